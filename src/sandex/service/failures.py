"""How a background task reports a failure: one line that names the cause.

A server that prints a traceback in normal operation is broken, and a background task
(a flush, a poll, a checkpoint, a storage write) that fails does so in normal
operation: the database was busy, the network dropped. So the log gets one line at
ERROR (or WARNING) naming what failed and why; the traceback goes to DEBUG only, for
whoever turns it on.
"""

from __future__ import annotations

import logging

__all__ = ["cause_of", "report_failure", "Quietly"]


def cause_of(exc: BaseException) -> str:
    """``Type: message`` of the underlying error: the first line of its message. A
    database driver's error wrapped by SQLAlchemy is named by the driver's own, since
    SQLAlchemy's adds the statement and its parameters (and PostgreSQL's later lines
    quote the statement), which do not belong in a log."""
    inner = getattr(exc, "orig", None)
    cause = inner if isinstance(inner, BaseException) else exc
    lines = str(cause).strip().splitlines()
    text = " ".join(lines[0].split()) if lines else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def report_failure(
    log: logging.Logger, what: str, exc: BaseException, *, level: int = logging.ERROR
) -> None:
    """Log ``what`` failed and why, in one line; the traceback at DEBUG."""
    log.log(level, "%s (%s)", what, cause_of(exc))
    log.debug("%s: traceback", what, exc_info=exc)


class Quietly:
    """The failures of something tried again and again (a loop's step, a poll): the
    first is one line (:func:`report_failure`), the next are quiet until it succeeds
    again, which is one line too when ``recovered`` is given."""

    __slots__ = ("_level", "_log", "_recovered", "_what", "failing")

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        level: int = logging.ERROR,
        recovered: str | None = None,
    ) -> None:
        self._log = log
        self._what = what
        self._level = level
        self._recovered = recovered
        self.failing = False

    def failed(self, exc: BaseException) -> None:
        if not self.failing:
            report_failure(self._log, self._what, exc, level=self._level)
        self.failing = True

    def succeeded(self) -> None:
        if self.failing and self._recovered is not None:
            self._log.warning(self._recovered)
        self.failing = False
