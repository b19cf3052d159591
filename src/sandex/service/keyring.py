"""The live keyring and the server secrets sealed under it."""

from __future__ import annotations

import secrets
import threading

from sandex.keys import Keyring, SealError
from sandex.service.errors import Conflict, MasterKeyProblem
from sandex.service.ports import KeyringSource, UnitOfWorkFactory

__all__ = ["KeyringHolder", "ServerSecrets", "load_server_secrets"]


class KeyringHolder:
    """The current keyring, reloaded from its source when an envelope names a master key
    this process does not know yet (another process rotated the master key)."""

    def __init__(self, source: KeyringSource) -> None:
        self.source = source
        self._keyring = source.load()
        self._lock = threading.Lock()

    @property
    def keyring(self) -> Keyring:
        return self._keyring

    def open(self, envelope: bytes, context: bytes) -> bytes:
        try:
            return self._keyring.open(envelope, context)
        except SealError:
            if Keyring.key_id_of(envelope) in self._keyring.key_ids:
                raise
            self.reload()
            return self._keyring.open(envelope, context)

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        return self._keyring.seal(plaintext, context)

    def reload(self) -> Keyring:
        with self._lock:
            self._keyring = self.source.load()
            return self._keyring


class ServerSecrets:
    """Secrets the server makes for itself on first start, sealed in the database."""

    def __init__(self, pepper: bytes, audit_key: bytes) -> None:
        self.pepper = pepper
        self.audit_key = audit_key


_NAMES = ("lookup-pepper", "audit-key")


def load_server_secrets(uow: UnitOfWorkFactory, keyring: KeyringHolder) -> ServerSecrets:
    """Unseal the server secrets, creating them on the very first start."""
    values: dict[str, bytes] = {}
    for name in _NAMES:
        context = b"server-secret:" + name.encode()
        for _attempt in range(2):
            with uow() as work:
                envelope = work.server_secrets.get(name)
                if envelope is None:
                    envelope = keyring.seal(secrets.token_bytes(32), context)
                    try:
                        work.server_secrets.add(name, envelope)
                        work.commit()
                    except Conflict:  # another process created it first: read theirs
                        continue
            try:
                values[name] = keyring.open(envelope, context)
            except SealError as exc:
                raise MasterKeyProblem(
                    f"the master key does not open this database's secrets ({exc}). Use the"
                    f" master key this database was created with ({keyring.source.description})."
                ) from None
            break
        else:
            raise MasterKeyProblem(f"could not create the server secret {name!r}")
    return ServerSecrets(values["lookup-pepper"], values["audit-key"])
