"""Rotating the master key: re-wrap every sealed secret under a new primary key."""

from __future__ import annotations

from dataclasses import dataclass

from sandex.keys import MasterKey
from sandex.keys.audit import details_text
from sandex.service.actors import Actor
from sandex.service.errors import InvalidRequest
from sandex.service.keyring import KeyringHolder
from sandex.service.ports import UnitOfWorkFactory

__all__ = ["MasterKeyRotation", "RotationReport"]


@dataclass(frozen=True)
class RotationReport:
    old_key_ids: tuple[str, ...]
    new_key_id: str
    rewrapped: int
    retired: bool
    """True when the old keys were removed from the keyring (file-based keyrings)."""


class MasterKeyRotation:
    """Re-wrap without downtime.

    With a keyring file: a new key is generated and made primary (the old ones stay
    so that running servers and half-finished work can still open everything), every
    envelope is re-wrapped in small transactions, then the old keys are dropped.
    A server that meets an envelope wrapped by a key it does not know reloads the
    keyring. With ``SANDEX_MASTER_KEY`` the operator supplies ``NEW,OLD``; this
    re-wraps everything under NEW and says that OLD can be removed.
    """

    def __init__(self, *, uow: UnitOfWorkFactory, keyring: KeyringHolder) -> None:
        self._uow = uow
        self._holder = keyring

    def rotate(self, *, now: int, actor: Actor) -> RotationReport:
        source = self._holder.source
        before = self._holder.reload()
        if source.can_generate:
            fresh = MasterKey.generate()
            keyring = source.add_primary(fresh)
        else:
            keyring = before
        self._holder.reload()
        primary = keyring.primary.key_id
        rewrapped = 0
        with self._uow(readonly=True) as reader:
            for batch in reader.sealed.scan():
                with self._uow() as uow:
                    for value in batch:
                        new = keyring.rewrap(value.envelope)
                        if new is not value.envelope and uow.sealed.replace(value, new):
                            rewrapped += 1
                    uow.commit()
        if not source.can_generate and rewrapped == 0 and len(keyring.key_ids) == 1:
            raise InvalidRequest(
                "every secret is already sealed with the only key in SANDEX_MASTER_KEY. To rotate:"
                " make a new key (sandex admin generate-master-key), set"
                " SANDEX_MASTER_KEY=NEW,OLD, run this command again, then remove OLD."
            )
        retired = False
        if source.can_generate:
            source.keep_only_primary()
            self._holder.reload()
            retired = True
        old_ids = tuple(k for k in before.key_ids if k != primary)
        with self._uow() as uow:
            uow.audit.append(
                [
                    actor.event(
                        now,
                        "master_key.rotated",
                        details=details_text(
                            {"from": list(old_ids), "to": primary, "rewrapped": rewrapped}
                        ),
                    )
                ]
            )
            uow.commit()
        return RotationReport(old_ids, primary, rewrapped, retired)
