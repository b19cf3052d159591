"""Use cases for users: sign-up (by the operator, or self-service within the sign-up
mode), invitations, password check, TOTP enrolment, recovery codes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sandex.accounts import (
    ACCOUNT_THROTTLE,
    PAIR_THROTTLE,
    SOURCE_THROTTLE,
    InvalidCode,
    InvalidEmail,
    PasswordHasher,
    SignUpMode,
    Throttled,
    ThrottlePolicy,
    TotpSetup,
    User,
    WrongPassword,
    check_password_strength,
    check_throttle,
    match_totp,
    new_recovery_codes,
    new_totp_secret,
    normalize_email,
    normalize_recovery_code,
    provisioning_uri,
    record_failure,
    recovery_code_digest,
    refund,
)
from sandex.accounts.signup import (
    INVITE_TTL_MS,
    MAX_INVITE_TTL_MS,
    invite_digest,
    new_invite_code,
    normalize_invite_code,
    signup_throttle,
)
from sandex.accounts.totp import is_totp_code
from sandex.keys import AuditEvent
from sandex.keys.audit import details_text
from sandex.service.actors import Actor
from sandex.service.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    SecondFactorRequired,
    SignUpRefused,
)
from sandex.service.keyring import KeyringHolder
from sandex.service.ports import UnitOfWork, UnitOfWorkFactory

__all__ = ["UserService", "TotpEnrolment", "Invitation", "user_for"]


@dataclass(frozen=True)
class TotpEnrolment:
    """What a user needs to add Sandex to an authenticator app (shown once)."""

    secret: str
    uri: str


@dataclass(frozen=True)
class Invitation:
    """A one-time sign-up code (shown once; only its keyed hash is stored)."""

    id: int
    code: str
    expires_at: int


def _totp_context(user_id: int) -> bytes:
    return b"totp-secret:" + str(user_id).encode()


class UserService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        keyring: KeyringHolder,
        pepper: bytes,
        starting_balance: Sequence[tuple[str, int]] = (),
        signup: SignUpMode = SignUpMode.OPEN,
        signup_per_hour: int = 5,
    ) -> None:
        self._signup = signup
        self._signup_throttle = signup_throttle(signup_per_hour)
        self._starting_balance = tuple(starting_balance)
        """``(asset, amount in 1e-8 units)`` credited to every new user."""
        self._uow = uow
        self._hasher = hasher
        self._keyring = keyring
        self._pepper = pepper

    # -- users -------------------------------------------------------------------------

    def create(self, email: str, password: str, *, now: int, actor: Actor) -> User:
        address = normalize_email(email)
        check_password_strength(password, email=address)
        password_hash = self._hasher.hash(password)
        with self._uow() as uow:
            if uow.users.by_email(address) is not None:
                raise Conflict(f"a user with e-mail {address} already exists")
            user = uow.users.add(address, password_hash, now)
            self._open_account(uow, user, now)
            uow.audit.append(
                [
                    actor.event(
                        now,
                        "user.created",
                        user_id=user.id,
                        details=details_text({"email": address}),
                    )
                ]
            )
            uow.commit()
        return user

    def sign_up(
        self, email: str, password: str, *, now: int, source: str, invite: str | None = None
    ) -> str:
        """Self-service sign-up from ``source``, within the sign-up mode; the normalised
        e-mail address.

        It answers alike whether or not the address has an account (no enumeration):
        the password is hashed either way, an invitation is spent either way, and only a
        new address gets an account (the owner of a taken one sees the attempt in their
        audit log). Sign-ups from one address are limited per hour, counted before any
        work (a refused invitation counts too)."""
        if self._signup is SignUpMode.CLOSED:
            raise SignUpRefused("sign-up is closed on this server; ask its operator for an account")
        address = normalize_email(email)
        check_password_strength(password, email=address)
        code = None
        if self._signup is SignUpMode.INVITE:
            code = normalize_invite_code(invite or "")
            if code is None:
                raise SignUpRefused(
                    "sign-up on this server needs an invitation code (sdxi_...) from its operator"
                )
        self._count_sign_up(source, now)
        password_hash = self._hasher.hash(password)
        with self._uow() as uow:
            details: dict[str, object] = {"email": address}
            if code is not None:
                invite_id = uow.invites.consume(invite_digest(self._pepper, code), now)
                if invite_id is None:
                    raise SignUpRefused("the invitation code is wrong, used or expired")
                details["invite"] = invite_id
                uow.audit.append(
                    [
                        AuditEvent(
                            now,
                            "invite.used",
                            None,
                            None,
                            ip=source,
                            outcome="ok",
                            details=details_text({"invite": invite_id}),
                        )
                    ]
                )
            try:
                user = uow.users.add(address, password_hash, now)
            except Conflict:
                taken = uow.users.by_email(address)
                uow.audit.append(
                    [
                        AuditEvent(
                            now,
                            "user.sign_up_refused",
                            None,
                            None if taken is None else taken.id,
                            ip=source,
                            outcome="denied",
                            reason="the e-mail address already has an account",
                        )
                    ]
                )
            else:
                self._open_account(uow, user, now)
                uow.audit.append(
                    [
                        AuditEvent(
                            now,
                            "user.created",
                            f"user:{user.id}",
                            user.id,
                            ip=source,
                            outcome="ok",
                            details=details_text(details),
                        )
                    ]
                )
            uow.commit()
        return address

    def invite(self, *, now: int, actor: Actor, ttl_ms: int = INVITE_TTL_MS) -> Invitation:
        """A one-time sign-up code for ``SANDEX_SIGNUP=invite``, valid for ``ttl_ms``."""
        if not 0 < ttl_ms <= MAX_INVITE_TTL_MS:
            raise InvalidRequest(
                f"an invitation lasts from a moment to {MAX_INVITE_TTL_MS // 86_400_000} days"
            )
        code = new_invite_code()
        with self._uow() as uow:
            invite_id = uow.invites.add(invite_digest(self._pepper, code), now, now + ttl_ms)
            uow.audit.append(
                [
                    actor.event(
                        now,
                        "invite.created",
                        details=details_text({"invite": invite_id, "expiresAt": now + ttl_ms}),
                    )
                ]
            )
            uow.commit()
        return Invitation(invite_id, code, now + ttl_ms)

    def find(self, email: str) -> User:
        address = normalize_email(email)
        with self._uow(readonly=True) as uow:
            user = uow.users.by_email(address)
        if user is None:
            raise NotFound(f"no user with e-mail {address}")
        return user

    def get(self, user_id: int) -> User:
        with self._uow(readonly=True) as uow:
            user = uow.users.get(user_id)
        if user is None:
            raise NotFound(f"no user with id {user_id}")
        return user

    def all(self) -> list[User]:
        with self._uow(readonly=True) as uow:
            return uow.users.all()

    def login(
        self,
        email: str,
        password: str,
        *,
        now: int,
        source: str,
        second_factor: str | None = None,
    ) -> User:
        """Check a password, and the 2FA code of a user who has 2FA (throttled per account
        and source, per source, and per account); the user on success."""
        try:
            address = normalize_email(email)
        except InvalidEmail:
            raise WrongPassword("wrong e-mail or password") from None
        with self._attempt(address, source, now):
            with self._uow() as uow:
                user = uow.users.by_email(address)
                if user is None:
                    self._hasher.burn(password)
                    raise WrongPassword("wrong e-mail or password")
                self._hasher.verify(user.password_hash, password)
                if user.has_2fa:
                    if not second_factor:
                        raise SecondFactorRequired("a 2FA code is required to log in")
                    self._consume_second_factor(uow, user, second_factor, source, now)
                if self._hasher.needs_rehash(user.password_hash):
                    uow.users.set_password_hash(user.id, self._hasher.hash(password))
                uow.audit.append(
                    [
                        AuditEvent(
                            now, "user.login", f"user:{user.id}", user.id, ip=source, outcome="ok"
                        )
                    ]
                )
                uow.commit()
        return user

    # -- TOTP --------------------------------------------------------------------------

    def begin_totp(self, user_id: int, *, now: int, actor: Actor) -> TotpEnrolment:
        """Start enrolment: a new secret, stored sealed and unconfirmed until a code proves it."""
        with self._uow() as uow:
            user = user_for(uow, user_id, actor)
            if user.has_2fa:
                raise Conflict("2FA is already enabled; disable it first to enrol a new device")
            secret = new_totp_secret()
            envelope = self._keyring.seal(secret.encode(), _totp_context(user.id))
            uow.users.set_totp(user.id, TotpSetup(envelope, now))
            uow.audit.append([actor.event(now, "2fa.enrolment_started", user_id=user.id)])
            uow.commit()
        return TotpEnrolment(secret, provisioning_uri(secret, user.email))

    def confirm_totp(self, user_id: int, code: str, *, now: int, actor: Actor) -> list[str]:
        """Confirm enrolment with a first code; returns ten recovery codes (shown once)."""
        with self._attempt(self._email_of(user_id), actor.source, now):
            with self._uow() as uow:
                user = user_for(uow, user_id, actor)
                if user.totp is None:
                    raise InvalidRequest("2FA enrolment was not started (run totp enable first)")
                if user.has_2fa:
                    raise Conflict("2FA is already enabled")
                step = match_totp(self._totp_secret(user), code, now=now, last_step=None)
                uow.users.set_totp(
                    user.id, TotpSetup(user.totp.secret_envelope, user.totp.enrolled_at, now, step)
                )
                codes = new_recovery_codes()
                uow.recovery_codes.replace(
                    user.id, [recovery_code_digest(self._pepper, c) for c in codes], now
                )
                uow.audit.append([actor.event(now, "2fa.enabled", user_id=user.id)])
                uow.commit()
        return codes

    def disable_totp(self, user_id: int, code: str, *, now: int, actor: Actor) -> None:
        """Turn 2FA off; needs a valid TOTP or recovery code, even from the operator."""
        with self._attempt(self._email_of(user_id), actor.source, now):
            with self._uow() as uow:
                user = user_for(uow, user_id, actor)
                if user.totp is None:
                    raise InvalidRequest("2FA is not enabled")
                if user.has_2fa:
                    self._consume_second_factor(uow, user, code, actor.source, now)
                else:  # enrolment never confirmed: a code from the pending secret suffices
                    match_totp(self._totp_secret(user), code, now=now, last_step=None)
                uow.users.set_totp(user.id, None)
                uow.recovery_codes.replace(user.id, [], now)
                uow.audit.append([actor.event(now, "2fa.disabled", user_id=user.id)])
                uow.commit()

    def regenerate_recovery_codes(
        self, user_id: int, code: str, *, now: int, actor: Actor
    ) -> list[str]:
        """Replace every recovery code (the old ones stop working); needs a valid code."""
        with self._attempt(self._email_of(user_id), actor.source, now):
            with self._uow() as uow:
                user = user_for(uow, user_id, actor)
                if not user.has_2fa:
                    raise InvalidRequest("2FA is not enabled")
                self._consume_second_factor(uow, user, code, actor.source, now)
                codes = new_recovery_codes()
                uow.recovery_codes.replace(
                    user.id, [recovery_code_digest(self._pepper, c) for c in codes], now
                )
                uow.audit.append(
                    [actor.event(now, "2fa.recovery_codes_regenerated", user_id=user.id)]
                )
                uow.commit()
        return codes

    def recovery_codes_left(self, user_id: int) -> int:
        with self._uow(readonly=True) as uow:
            return uow.recovery_codes.remaining(user_id)

    # -- second factor, for changes that need it --------------------------------------

    def require_second_factor(
        self, uow: UnitOfWork, user: User, actor: Actor, *, now: int, purpose: str
    ) -> None:
        """Check (and use up) the actor's 2FA code inside ``uow``; operators need none.

        Wrap the unit of work in :meth:`failures_recorded`: it counts the code before it
        is checked (throttling), and keeps a wrong one counted even though the change is
        rolled back.
        """
        if actor.is_operator:
            return
        if not user.has_2fa:
            raise SecondFactorRequired(f"enable 2FA (TOTP) before you {purpose}")
        if not actor.second_factor:
            raise SecondFactorRequired(f"a 2FA code is required to {purpose}")
        self._consume_second_factor(uow, user, actor.second_factor, actor.source, now)

    @contextmanager
    def failures_recorded(self, user: User, actor: Actor, now: int) -> Iterator[None]:
        """Around a change that may check the 2FA code ``actor`` sent: the code is one
        throttled attempt (nothing is counted when no code was sent, or by the operator)."""
        if actor.is_operator or not actor.second_factor:
            yield
            return
        with self._attempt(user.email, actor.source, now):
            yield

    # -- internals ---------------------------------------------------------------------

    def _consume_second_factor(
        self, uow: UnitOfWork, user: User, code: str, source: str, now: int
    ) -> None:
        assert user.totp is not None
        if is_totp_code(code):
            step = match_totp(self._totp_secret(user), code, now=now, last_step=user.totp.last_step)
            uow.users.set_totp(
                user.id,
                TotpSetup(
                    user.totp.secret_envelope, user.totp.enrolled_at, user.totp.confirmed_at, step
                ),
            )
        else:
            recovery = normalize_recovery_code(code)
            if recovery is None:
                raise InvalidCode("a 2FA code is 6 digits (or a recovery code like abcde-fghjk)")
            if not uow.recovery_codes.consume(
                user.id, recovery_code_digest(self._pepper, recovery), now
            ):
                raise InvalidCode("wrong or already used recovery code")
            uow.audit.append(
                [
                    AuditEvent(
                        now,
                        "2fa.recovery_code_used",
                        f"user:{user.id}",
                        user.id,
                        ip=source,
                        outcome="ok",
                    )
                ]
            )

    def _open_account(self, uow: UnitOfWork, user: User, now: int) -> None:
        for asset, amount in self._starting_balance:
            uow.credits.add(user.id, asset, amount, "starting balance", now)

    def _count_sign_up(self, source: str, now: int) -> None:
        """One sign-up from ``source``, or :class:`Throttled` past the hourly limit."""
        subject = "signup:" + source
        with self._uow() as uow:
            state = uow.throttles.lock([subject])[subject]
            if now < state.locked_until:
                wait = state.locked_until - now
                raise Throttled(
                    f"too many sign-ups from {source}; try again in {-(-wait // 1000)} s",
                    retry_after_ms=wait,
                )
            uow.throttles.put(subject, record_failure(self._signup_throttle, state, now=now))
            uow.commit()

    def _totp_secret(self, user: User) -> str:
        assert user.totp is not None
        return self._keyring.open(user.totp.secret_envelope, _totp_context(user.id)).decode()

    @contextmanager
    def _attempt(self, email: str, source: str, now: int) -> Iterator[None]:
        """One guess at the password or a code of account ``email`` from ``source``.

        It is counted before it is checked, in a transaction of its own that holds the
        throttle rows (so parallel guesses cannot all pass one check), and refused with
        :class:`Throttled` while any throttle is locked. A wrong password or code stays
        counted (and is audited) though the change itself rolls back; anything else takes
        the count back, and a success also clears the (account, source) throttle."""
        subjects = _subjects(email, source)
        with self._uow() as uow:
            states = uow.throttles.lock(list(subjects))
            refusals: list[Throttled] = []
            for subject, (_, what) in subjects.items():
                try:
                    check_throttle(states[subject], now=now, what=what)
                except Throttled as exc:
                    refusals.append(exc)
            if refusals:
                raise max(refusals, key=lambda exc: exc.retry_after_ms)
            for subject, (policy, _) in subjects.items():
                uow.throttles.put(subject, record_failure(policy, states[subject], now=now))
            uow.commit()
        try:
            yield
        except (WrongPassword, InvalidCode) as exc:
            self._audit_failure(email, source, now, exc)
            raise
        except BaseException:
            self._settle(subjects, succeeded=False)
            raise
        self._settle(subjects, succeeded=True)

    def _settle(self, subjects: dict[str, tuple[ThrottlePolicy, str]], *, succeeded: bool) -> None:
        """Take back an attempt that was not a wrong guess."""
        with self._uow() as uow:
            states = uow.throttles.lock(list(subjects))
            for subject, (policy, _) in subjects.items():
                if succeeded and policy is PAIR_THROTTLE:
                    uow.throttles.clear(subject)
                else:
                    uow.throttles.put(subject, refund(policy, states[subject]))
            uow.commit()

    def _audit_failure(self, email: str, source: str, now: int, exc: Exception) -> None:
        with self._uow() as uow:
            user = uow.users.by_email(email)
            uow.audit.append(
                [
                    AuditEvent(
                        now,
                        "auth.factor_failed",
                        None,
                        None if user is None else user.id,
                        ip=source,
                        outcome="denied",
                        reason=str(exc),
                    )
                ]
            )
            uow.commit()

    def _email_of(self, user_id: int) -> str:
        return self.get(user_id).email


def user_for(uow: UnitOfWork, user_id: int, actor: Actor) -> User:
    """The user ``actor`` may act on, locked for the change; a user sees only themself
    (anyone else is "not found", so nothing about other accounts leaks)."""
    if actor.user_id is not None and actor.user_id != user_id:
        raise NotFound(f"no user with id {user_id}")
    user = uow.users.get(user_id, for_update=True)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def _subjects(email: str, source: str) -> dict[str, tuple[ThrottlePolicy, str]]:
    """The throttles a guess at ``email``'s password or code from ``source`` counts
    against: the pair, the source, the account; with what each one's refusal names."""
    return {
        f"pair:{source}|{email}": (PAIR_THROTTLE, f"this account from {source}"),
        f"source:{source}": (SOURCE_THROTTLE, source),
        f"user:{email}": (ACCOUNT_THROTTLE, "this account"),
    }
