"""Who asks for a change: the operator, or a user (who may have to prove 2FA)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandex.keys import AuditEvent

__all__ = ["Actor"]


@dataclass(frozen=True)
class Actor:
    """The operator (the CLI, with direct database access) or a signed-in user.

    ``second_factor`` is the user's current TOTP code or one recovery code; changes
    that widen what a key can do need it. ``source`` is the requester's IP (or
    ``"cli"``), used for throttling and the audit log.
    """

    user_id: int | None
    source: str
    second_factor: str | None = field(default=None, repr=False)

    @classmethod
    def operator(cls, source: str = "cli") -> Actor:
        return cls(None, source)

    @classmethod
    def user(cls, user_id: int, source: str, second_factor: str | None = None) -> Actor:
        return cls(user_id, source, second_factor)

    @property
    def is_operator(self) -> bool:
        return self.user_id is None

    @property
    def label(self) -> str:
        return "operator" if self.user_id is None else f"user:{self.user_id}"

    def event(
        self,
        now: int,
        event: str,
        *,
        user_id: int | None = None,
        key_prefix: str | None = None,
        details: str | None = None,
    ) -> AuditEvent:
        """The audit event for a change this actor made successfully."""
        return AuditEvent(
            now, event, self.label, user_id, key_prefix, self.source, outcome="ok", details=details
        )
