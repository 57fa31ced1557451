"""Every error pytest-atlas raises on purpose.

All of them derive from :class:`AtlasError`, and all share one message shape::

    <what was wrong>
      how to fix: <what to do about it>

so that a person reading a CI log sees the problem on the first line and the remedy on the next.
Passwords never appear in these messages: DSNs are redacted before they are quoted.
"""

from __future__ import annotations

__all__ = [
    "AtlasError",
    "ConfigError",
    "InvalidArgument",
    "ProvisioningError",
    "SchemaLoadError",
]


class AtlasError(Exception):
    """Base class of every error raised by pytest-atlas.

    ``problem`` says what was wrong; ``hint`` (optional) says how to fix it.
    """

    def __init__(self, problem: str, *, hint: str | None = None) -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.hint:
            return f"{self.problem}\n  how to fix: {self.hint}"
        return self.problem


class ConfigError(AtlasError):
    """An option, ini key or environment variable has a value pytest-atlas cannot use.

    The pytest plugin turns it into ``pytest.UsageError``.
    """

    def __init__(self, where: str, value: object, expected: str, *, hint: str | None = None) -> None:
        self.where = where
        self.value = value
        self.expected = expected
        shown = value if isinstance(value, str) else repr(value)
        problem = f"invalid value for {where}: {shown!r}: {expected}"
        super().__init__(problem, hint=hint)


class InvalidArgument(AtlasError, TypeError):
    """A public function or strategy was called with arguments it cannot accept.

    Raised up front, before any work is done, like Hypothesis's ``InvalidArgument``.
    """


class ProvisioningError(AtlasError):
    """No usable PostgreSQL server: binaries missing, a server that would not start, a DSN that
    cannot be reached, a role without the rights the plugin needs."""


class SchemaLoadError(ProvisioningError):
    """A schema file (``schema.sql`` or extra SQL) failed to load.

    Carries the file, the 1-based line where the failing statement starts (or the exact error line
    when PostgreSQL reports a position), the statement, and PostgreSQL's own message.
    """

    def __init__(
        self,
        path: str,
        line: int,
        statement: str,
        message: str,
        *,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.statement = statement
        self.message = message
        excerpt = " ".join(statement.split())
        if len(excerpt) > 200:
            excerpt = excerpt[:197] + "..."
        problem = f"{path}:{line}: {message}\n  in statement: {excerpt}"
        super().__init__(
            problem,
            hint=hint or f"fix the statement at {path} line {line}; pytest-atlas loads the file statement "
            "by statement, in one transaction",
        )
