"""Every error pytest-atlas raises on purpose.

All of them derive from :class:`AtlasError`, and all share one message shape::

    <what was wrong>
      how to fix: <what to do about it>

so that a person reading a CI log sees the problem on the first line and the remedy on the next.
Passwords never appear in these messages: DSNs are redacted before they are quoted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for annotations only: errors.py imports nothing at run time (Violation is data, below errors)
    from pytest_atlas._violation import Violation

__all__ = [
    "AtlasError",
    "AtlasRuntimeError",
    "BaselineFileError",
    "ConfigError",
    "ExportFormatError",
    "GateError",
    "InsertError",
    "InvalidArgument",
    "PayloadError",
    "ProvisioningError",
    "SchemaLoadError",
    "ScriptError",
    "SeedError",
    "ServerUnavailable",
]


class AtlasError(Exception):
    """Base class of every error raised by pytest-atlas.

    ``problem`` says what was wrong; ``hint`` (optional) says how to fix it. ``transient``: a fault
    that may pass (a connection the server cut), so the same call may succeed if made again.
    """

    transient: bool = False

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

    def __init__(
        self, where: str, value: object, expected: str, *, hint: str | None = None, show_value: bool = True
    ) -> None:
        self.where = where
        self.value = value
        self.expected = expected
        shown = value if isinstance(value, str) else repr(value)
        # show_value false: ``expected`` names the value itself (an unknown key: "unknown key 'x' ...")
        problem = f"invalid value for {where}: " + (f"{shown!r}: {expected}" if show_value else expected)
        super().__init__(problem, hint=hint)


class InvalidArgument(AtlasError, TypeError):
    """A public function or strategy was called with arguments it cannot accept.

    Raised up front, before any work is done, like Hypothesis's ``InvalidArgument``.
    """


class ProvisioningError(AtlasError):
    """No usable PostgreSQL server: binaries missing, a server that would not start, a DSN that
    cannot be reached, a role without the rights the plugin needs."""


class ServerUnavailable(ProvisioningError):
    """A fault that may pass: the server is restarting or recovering, a connection was cut, it was
    retried for a while without success. Reported to the tests that waited, and tried again for
    the next ones (never remembered for the rest of the run)."""


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
            hint=hint
            or f"fix the statement at {path} line {line}; pytest-atlas loads the file statement "
            "by statement, in one transaction",
        )


class SeedError(ProvisioningError):
    """The seed function of a fixture family (``atlas_fixtures(seed=...)``) failed on the family's
    template. Remembered for the run: every test of that family gets the same message at once."""


# --- statistics and gates -------------------------------------------------------------------------


class GateError(AtlasError):
    """A gate could not be evaluated: the database is unreachable, a query failed, a gate is
    declared wrongly. Reported as the gate outcome ``error``, distinct from ``fail``."""

    #: the fault may pass (the server cut the connection mid-read): reading again may succeed
    transient: bool = False
    #: the database could not be reached at all (no connection was made)
    unreachable: bool = False


class BaselineFileError(GateError):
    """A baseline file (``--atlas-baseline``) is missing, unreadable or not in pytest-atlas's format."""

    def __init__(self, path: str, problem: str, *, hint: str | None = None) -> None:
        self.path = path
        super().__init__(
            f"baseline file {path}: {problem}",
            hint=hint
            or "write it again with --atlas-save-baseline PATH (from a run you trust), "
            "or point --atlas-baseline at the right file",
        )


# --- payload contracts ---------------------------------------------------------------------------


class PayloadError(AtlasError):
    """A payload does not match its JSON Schema. Carries every violation (errors first, then the
    warnings), each with its JSON path, keyword and a preview of the offending value."""

    #: how many violations the message lists (all of them stay in ``violations``)
    shown = 20

    def __init__(self, schema: str, violations: Sequence[Violation]) -> None:
        self.schema = schema
        self.violations: tuple[Violation, ...] = tuple(violations)
        errors = self.errors
        lines = [f"payload does not match the {schema} schema: {len(errors)} error{'' if len(errors) == 1 else 's'}"]
        lines += [
            f"  {violation.format(location=violation.table is not None)}" for violation in self.violations[: self.shown]
        ]
        if len(self.violations) > self.shown:
            lines.append(f"  ... and {len(self.violations) - self.shown} more")
        super().__init__(
            "\n".join(lines), hint=f"fix the values at these paths (the schema: pytest_atlas.load_schema({schema!r}))"
        )

    @property
    def errors(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.severity == "error")

    @property
    def warnings(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.severity == "warning")


# --- data generation -----------------------------------------------------------------------------


class InsertError(AtlasError):
    """Rows could not be inserted (factories, ``insert_graphs``, ``load_export``).

    Names the table, the row (its position in what you passed) where known, and PostgreSQL's own
    message. Nothing was inserted: the batch runs under a savepoint that is rolled back.
    """

    def __init__(self, table: str, message: str, *, row: int | None = None, hint: str | None = None) -> None:
        self.table = table
        self.row = row
        self.message = message
        where = f"{table} row {row}" if row is not None else table
        super().__init__(
            f"could not insert into {where}: {message}",
            hint=hint or "check the values of that row (jsonb rejects NaN, Infinity and \\u0000; TEXT rejects NUL)",
        )


class ExportFormatError(InvalidArgument):
    """A line of an export file is not what ``arc-atlas export`` writes (names the file and line)."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        self.source = source
        self.line = line
        super().__init__(
            f"{source}:{line}: {problem}",
            hint="pass a file written by `arc-atlas export` (one JSON object per line with task, steps and "
            "session_metadata)",
        )


# --- Atlas itself, run offline -------------------------------------------------------------------


class AtlasRuntimeError(AtlasError):
    """Atlas's own runtime could not be run as asked: ``arc-atlas`` (or ``asyncpg``) is not
    installed, the installed version is not one the runtime was built for, or a run failed in a way
    the caller did not ask for (the session is then in the database with status ``failed``)."""


class ScriptError(AtlasRuntimeError):
    """An LLM call of a scripted Atlas run had no scripted response: nothing ever reaches a provider.

    ``role`` names the caller (``router``, ``judge``, ``arbiter``, ``teacher``, ``synthesizer``,
    ``agent``, or ``unknown``); ``session_id`` is the session the run wrote, when there is one.
    """

    def __init__(self, role: str, problem: str, *, hint: str | None = None, session_id: int | None = None) -> None:
        self.role = role
        self.session_id = session_id
        super().__init__(problem, hint=hint)
