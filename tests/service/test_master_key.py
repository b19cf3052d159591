"""The master key: where it lives, what happens when it is wrong, and rotation."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import pytest

from conftest import NOW
from sandex.bootstrap import open_sandex
from sandex.config import Settings
from sandex.keys import Keyring, MasterKey
from sandex.service import InvalidRequest, MasterKeyProblem
from sandex.service.actors import Actor
from support import enable_totp, make_key, make_user, next_step, signed_request, totp_code

OPERATOR = Actor.operator()


def _file_keys(settings: Settings) -> list[str]:
    return list(json.loads((settings.data_dir / "master.key").read_text())["keys"])


def test_first_start_creates_a_0600_key_file(settings: Settings) -> None:
    with open_sandex(settings):
        pass
    path = settings.data_dir / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.data_dir.stat().st_mode) == 0o700
    assert len(_file_keys(settings)) == 1


def test_a_key_file_readable_by_others_is_refused(settings: Settings) -> None:
    with open_sandex(settings):
        pass
    os.chmod(settings.data_dir / "master.key", 0o644)
    with pytest.raises(MasterKeyProblem, match="chmod 600"):
        open_sandex(settings)


def test_the_wrong_master_key_is_refused_with_a_clear_message(settings: Settings) -> None:
    first = MasterKey.generate().to_text()
    with open_sandex(dataclasses.replace(settings, master_key=first)):
        pass
    other = MasterKey.generate().to_text()
    with pytest.raises(MasterKeyProblem, match="does not open this database"):
        open_sandex(dataclasses.replace(settings, master_key=other))
    with pytest.raises(MasterKeyProblem, match="not valid"):
        open_sandex(dataclasses.replace(settings, master_key="too-short"))


def test_rotating_a_file_keyring_rewraps_everything(settings: Settings) -> None:
    with open_sandex(settings) as sx:
        user = make_user(sx, now=NOW)
        totp_secret, _ = enable_totp(sx, user, now=NOW)
        key = make_key(sx, user, now=NOW)
        before = _file_keys(settings)
        report = sx.master_keys.rotate(now=NOW, actor=OPERATOR)
        assert report.rewrapped == 4  # the HMAC secret, the TOTP secret, two server secrets
        assert report.retired
    after = _file_keys(settings)
    assert len(after) == 1 and after != before
    assert report.new_key_id == MasterKey.from_text(after[0]).key_id
    with open_sandex(settings) as sx:  # a cold start can open everything with the new key only
        t = NOW + 1000
        sx.auth.authenticate(signed_request(key.api_key, secret=key.secret, timestamp=t), t)
        t2 = next_step(NOW)
        sx.users.disable_totp(user.id, totp_code(totp_secret, t2), now=t2, actor=OPERATOR)
        events = [r.event.event for r in sx.audit.tail(limit=3)]
        assert "master_key.rotated" in events
        assert sx.audit.verify().ok


def test_a_running_process_picks_up_a_rotation_made_elsewhere(settings: Settings) -> None:
    with open_sandex(settings) as server:
        user = make_user(server, now=NOW)
        key = make_key(server, user, now=NOW)
        with open_sandex(settings) as operator:
            operator.master_keys.rotate(now=NOW, actor=OPERATOR)
        # the server's cache is cold for this key, and its keyring still has only the old key
        server.auth.authenticate(signed_request(key.api_key, secret=key.secret, timestamp=NOW), NOW)


def test_rotating_an_environment_keyring_takes_new_then_old(settings: Settings) -> None:
    old, new = MasterKey.generate(), MasterKey.generate()
    with open_sandex(dataclasses.replace(settings, master_key=old.to_text())) as sx:
        user = make_user(sx, now=NOW)
        key = make_key(sx, user, now=NOW)
        with pytest.raises(InvalidRequest, match="SANDEX_MASTER_KEY=NEW,OLD"):
            sx.master_keys.rotate(now=NOW, actor=OPERATOR)
    both = f"{new.to_text()},{old.to_text()}"
    with open_sandex(dataclasses.replace(settings, master_key=both)) as sx:
        report = sx.master_keys.rotate(now=NOW, actor=OPERATOR)
        assert report.new_key_id == new.key_id and report.old_key_ids == (old.key_id,)
        assert report.rewrapped == 3 and not report.retired
    with open_sandex(dataclasses.replace(settings, master_key=new.to_text())) as sx:
        sx.auth.authenticate(signed_request(key.api_key, secret=key.secret, timestamp=NOW), NOW)
    with pytest.raises(MasterKeyProblem):
        open_sandex(dataclasses.replace(settings, master_key=old.to_text()))
    assert not (settings.data_dir / "master.key").exists()


def test_keyring_ids_are_fingerprints_not_keys() -> None:
    key = MasterKey.generate()
    assert key.to_text() not in repr(key) and key.key_id in Keyring([key]).key_ids
