"""Options: one `atlas` group, CLI > environment > ini > default, UsageError on bad values, header."""

from __future__ import annotations

import pytest

from pytest_atlas._config import OPTIONS, resolve_settings
from pytest_atlas._dsn import Dsn
from pytest_atlas.errors import ConfigError

TRIVIAL = "def test_nothing():\n    pass\n"


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (["--atlas-port", "abc"], "", "invalid value for --atlas-port: 'abc': expected an integer from 0 to 65535"),
        (["--atlas-port", "70000"], "", "invalid value for --atlas-port: '70000'"),
        ([], "atlas_port = -1", "invalid value for ini atlas_port: '-1'"),
        ([], "atlas_keep_db = maybe", "invalid value for ini atlas_keep_db*maybe*: expected true or false"),
        (["--atlas-schema", "missing.sql"], "", "invalid value for --atlas-schema: 'missing.sql': no such file"),
        ([], "atlas_extra_sql =\n    nope.sql", "invalid value for ini atlas_extra_sql:"),
        (["--atlas-pg-bin", "/no/such/dir"], "", "invalid value for --atlas-pg-bin: '/no/such/dir': no such directory"),
        (["--atlas-dsn", "host=x password=hunter2 broken"], "", "not a valid PostgreSQL connection string"),
        (["--atlas-contract-since", "yesterday"], "", "expected a date as YYYY-MM-DD"),
        (
            ["--atlas-target", "host=127.0.0.1 port=abc password=hunter2"],
            "",
            "invalid value for --atlas-target: * port 'abc' is not a port number (1 to 65535)",
        ),
        (["--atlas-dsn", "postgresql://u:hunter2@h:0/db"], "", "invalid value for --atlas-dsn: * port '0' is not*"),
        ([], "atlas_target = host=h port=5432,x", "invalid value for ini atlas_target: * port 'x' is not a port*"),
        (["--atlas-target", "host=h connect_timeout=soon"], "", "connect_timeout 'soon' is not a number of seconds"),
        (
            ["--atlas-target", "host=h port=\u00b2"],
            "",
            "invalid value for --atlas-target: * port '\u00b2' is not a port*",
        ),
        (["--atlas-target", "host=h connect_timeout=\u0663"], "", "connect_timeout '\u0663' is not a number*"),
        (["--atlas-report-html", "."], "", "--atlas-report-html: * is a directory*"),
        (
            [],
            "atlas_report = test_nothing.py/r.json",
            "ini atlas_report: */test_nothing.py is a file*",
        ),
        (["--atlas-save-baseline", "."], "", "--atlas-save-baseline: * is a directory*"),
    ],
)
def test_bad_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], ini: str, expected: str) -> None:
    pytester.makepyfile(test_nothing=TRIVIAL)
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])
    assert "hunter2" not in result.stdout.str() + result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_all_options_are_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = result.stdout.str()
    section = text.split("pytest-atlas (Atlas SDK test databases, contracts and gates):", 1)[1]
    section = section.split("\n\n", 1)[0] if "\n\n" in section else section
    for option in OPTIONS:
        if option.cli:
            assert option.cli in section, option.cli
    for option in OPTIONS:
        if option.ini:
            assert option.ini in text, option.ini


def test_cli_beats_env_beats_ini_beats_default() -> None:
    ini = {"port": "5", "dsn": "postgresql://ini@h/db"}
    env = {"ATLAS_TEST_DSN": "postgresql://env@h/db"}
    settings = resolve_settings({"port": "7"}, ini, env)
    assert settings.port == 7 and settings.sources["port"] == "--atlas-port"
    assert settings.dsn == Dsn("postgresql://env@h/db") and settings.sources["dsn"] == "$ATLAS_TEST_DSN"
    settings = resolve_settings({"dsn": "postgresql://cli@h/db"}, ini, env)
    assert settings.dsn is not None and settings.dsn.reveal() == "postgresql://cli@h/db"
    settings = resolve_settings({}, ini, {})
    assert (settings.port, settings.dsn) == (5, Dsn("postgresql://ini@h/db"))
    assert settings.sources == {"port": "ini atlas_port", "dsn": "ini atlas_dsn"}
    defaults = resolve_settings({}, {}, {})
    assert (defaults.port, defaults.dsn, defaults.cache, defaults.keep_db) == (0, None, True, False)


def test_switches_flip_their_default_and_ini_booleans_parse() -> None:
    assert resolve_settings({"cache": True}, {}, {}).cache is False  # --atlas-no-cache
    assert resolve_settings({"keep_db": True}, {}, {}).keep_db is True
    assert resolve_settings({}, {"cache": "off", "keep_db": "yes"}, {}).cache is False
    assert resolve_settings({}, {"keep_db": "1"}, {}).keep_db is True
    with pytest.raises(ConfigError, match="ini atlas_cache"):
        resolve_settings({}, {"cache": "perhaps"}, {})


def test_schema_option_precedence_end_to_end(pytester: pytest.Pytester) -> None:
    pytester.makefile(".sql", from_ini="CREATE TABLE from_ini (x int);", from_cli="CREATE TABLE from_cli (x int);")
    pytester.makeini("[pytest]\natlas_schema = from_ini.sql\n")
    pytester.makepyfile(
        """
        import sys
        def test_which(atlas_db):
            tables = {r[0] for r in atlas_db.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
            print("TABLES", ",".join(sorted(tables)))
        """
    )
    pytester.runpytest("-s").stdout.fnmatch_lines(["*TABLES from_ini"])
    pytester.runpytest("-s", "--atlas-schema", "from_cli.sql").stdout.fnmatch_lines(["*TABLES from_cli"])


def test_header_shows_version_source_and_cache(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytester.makepyfile("def test_db(atlas_db):\n    pass\n")
    cache = tmp_path_factory.mktemp("cache")
    first = pytester.runpytest("--atlas-cache-dir", str(cache))
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(["atlas: PostgreSQL 1*.* from */bin (*)", "atlas: cluster cache: miss (*)*"])
    second = pytester.runpytest("--atlas-cache-dir", str(cache))
    second.stdout.fnmatch_lines(["atlas: cluster cache: hit (*)*"])
    off = pytester.runpytest("--atlas-cache-dir", str(cache), "--atlas-no-cache")
    off.stdout.fnmatch_lines(["atlas: cluster cache: disabled (--atlas-no-cache)*"])
    off.assert_outcomes(passed=1)


def test_header_names_an_existing_server_without_its_password(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TRIVIAL)
    result = pytester.runpytest("--atlas-dsn", "postgresql://me:s3cr3t@127.0.0.1:1/db")
    result.stdout.fnmatch_lines(
        ["atlas: existing server postgresql://me:***@127.0.0.1:1/db (from --atlas-dsn): not reachable (*)"]
    )
    assert "s3cr3t" not in result.stdout.str()
    result.assert_outcomes(passed=1)  # a test that uses no database is not affected


def test_options_reference_lists_every_option() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "options.md").read_text()
    for option in OPTIONS:
        if option.cli:
            assert f"`{option.cli}" in text, option.cli
        if option.ini:
            assert f"`{option.ini}" in text, option.ini


def test_defaults_are_declared_once_in_the_settings() -> None:
    """The option table holds no defaults of its own: AtlasSettings does, and every option sets one field."""
    from dataclasses import fields

    from pytest_atlas._config import AtlasSettings, Option

    assert "default" not in {f.name for f in fields(Option)}
    assert {o.field for o in OPTIONS} == {f.name for f in fields(AtlasSettings)} - {"sources"}
    for option in OPTIONS:
        assert option.default == getattr(AtlasSettings(), option.field)
        assert option.flag == (option.ini_type == "bool"), option.field


def test_no_test_only_switch_in_the_product() -> None:
    """The date the allow-list is judged by is the real one: no environment override of "today"."""
    from pathlib import Path

    import pytest_atlas

    package = Path(pytest_atlas.__file__).parent
    offenders = [str(p) for p in package.rglob("*.py") if "PYTEST_ATLAS_TODAY" in p.read_text(encoding="utf-8")]
    assert offenders == []


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        # a path read from the ini file is quoted as a path, not as the list pytest reads it into
        ("atlas_schema = missing.sql", "invalid value for ini atlas_schema: '*/missing.sql': no such file"),
        ("atlas_pg_bin = /no/such/dir", "invalid value for ini atlas_pg_bin: '/no/such/dir': no such directory"),
        # a folder where a file is expected (and the reverse) says so, and what is expected
        ("atlas_extra_sql = migrations", "invalid value for ini atlas_extra_sql: '*/migrations': is a directory*"),
        ("atlas_schema = migrations", "invalid value for ini atlas_schema: '*/migrations': is a directory*"),
        ("atlas_pg_bin = test_nothing.py", "invalid value for ini atlas_pg_bin: '*/test_nothing.py': is a file*"),
        # pytest's own reading of a typed key fails: the option's expected values, in full
        ("atlas_port = abc", "invalid value for ini atlas_port (*'abc'*): expected an integer from 0 to 65535"),
        ("atlas_keep_db = maybe", "invalid value for ini atlas_keep_db (*'maybe'*): expected true or false (also*"),
    ],
)
def test_ini_mistakes_name_the_option_and_read_as_written(pytester: pytest.Pytester, ini: str, expected: str) -> None:
    pytester.makepyfile(test_nothing=TRIVIAL)
    pytester.mkdir("migrations")
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {expected}"])
    assert "['" not in result.stderr.str() and "Traceback" not in result.stderr.str()


@pytest.mark.parametrize(
    ("args", "expected", "hint"),
    [
        (["--atlas-schema", "."], "invalid value for --atlas-schema: '.': is a directory, not a file", "SQL file"),
        (["--atlas-extra-sql", "."], "invalid value for --atlas-extra-sql: '.': is a directory, not a file", "each"),
        (["--atlas-pg-bin", "test_nothing.py"], "is a file, not a directory", "postgres and initdb"),
    ],
)
def test_a_folder_for_a_file_says_what_is_expected(
    pytester: pytest.Pytester, args: list[str], expected: str, hint: str
) -> None:
    pytester.makepyfile(test_nothing=TRIVIAL)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*", f"*how to fix: *{hint}*"])


@pytest.mark.filterwarnings(
    "ignore:Passing a value that is not a string:DeprecationWarning"
)  # pytest's own, in-process
def test_a_list_for_a_single_value_ini_key_is_refused_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing=TRIVIAL)
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\natlas_isolation = ["clone"]\n')
    result = pytester.runpytest("-W", "ignore::DeprecationWarning", "-p", "no:warnings")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: invalid value for ini atlas_isolation: 'clone': expected one value, not a list*"]
    )


#: every option whose ini key is a ``paths`` value (anchored by pytest at the ini file's folder)
PATH_OPTIONS = tuple(option for option in OPTIONS if option.ini is not None and option.ini_type == "paths")

#: what each path option is given (below the folder a form names): files the option reads exist
_PATH_TARGETS = {
    "pg_bin": "pgbin",
    "schema": "schema.sql",
    "extra_sql": "first.sql",
    "cache_dir": "cache",
    "data_dir": "data",
    "baseline": "baseline.json",
    "save_baseline": "saved.json",
    "report": "report.json",
    "report_html": "report.html",
}

_SHOW_SETTINGS = """
import json
from pytest_atlas.fixtures import settings_of

def test_show(pytestconfig):
    settings = settings_of(pytestconfig)
    shown = {}
    for field in FIELDS:
        value = getattr(settings, field)
        shown[field] = [str(p) for p in value] if isinstance(value, tuple) else str(value)
    print("ATLAS-SETTINGS", json.dumps(shown))
"""


#: a server no inner run reaches (its tests use no database)
_UNUSED_SERVER = "postgresql://nobody@127.0.0.1:1/unused"


def _shown_settings(result: pytest.RunResult) -> dict[str, object]:
    import json

    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    line = next(line for line in result.stdout.lines if "ATLAS-SETTINGS " in line)
    return dict(json.loads(line.split("ATLAS-SETTINGS ", 1)[1]))


@pytest.mark.parametrize("config_file", ["pytest.ini", "pyproject.toml"])
@pytest.mark.parametrize(
    ("form", "place"),
    [
        ("~/{path}", "home"),
        ("$ATLAS_INI_PLACE/{path}", "place"),
        ("${ATLAS_INI_PLACE}/{path}", "place"),
        ("{path}", "inidir"),  # a plain relative path stays anchored at the ini file's folder
        ("sub/$ATLAS_INI_NAME/{path}", "inidir/sub/named"),  # a variable further on expands in place
    ],
)
def test_ini_paths_expand_home_and_variables(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
    form: str,
    place: str,
    config_file: str,
) -> None:
    """``atlas_data_dir = ~/data`` is the data folder in the home folder, not ``<inidir>/~/data``
    (pytest anchors a ``paths`` value at the ini folder before the plugin reads it), and so for
    ``$VAR`` and every path option, in pytest.ini and in pyproject.toml alike."""
    home = tmp_path_factory.mktemp("home")
    elsewhere = tmp_path_factory.mktemp("place")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ATLAS_INI_PLACE", str(elsewhere))
    monkeypatch.setenv("ATLAS_INI_NAME", "named")
    base = {"home": home, "place": elsewhere}.get(place, pytester.path / place.removeprefix("inidir").lstrip("/"))
    base.mkdir(parents=True, exist_ok=True)
    (base / "pgbin").mkdir()
    for name in ("schema.sql", "first.sql", "second.sql"):
        (base / name).write_text("SELECT 1;\n")
    (base / "data").mkdir()
    values = {field: form.replace("{path}", target) for field, target in _PATH_TARGETS.items()}
    fields = [option.field for option in PATH_OPTIONS]
    assert sorted(fields) == sorted(values), "a new path option: give it a value above"
    second = form.replace("{path}", "second.sql")
    if config_file == "pytest.ini":
        lines = [f"{option.ini} = {values[option.field]}" for option in PATH_OPTIONS if option.field != "extra_sql"]
        lines.append(f"atlas_extra_sql =\n    {values['extra_sql']}\n    {second}")
        pytester.makeini("[pytest]\n" + "\n".join(lines) + "\n")
    else:
        lines = [f'{option.ini} = "{values[option.field]}"' for option in PATH_OPTIONS if option.field != "extra_sql"]
        lines.append(f'atlas_extra_sql = ["{values["extra_sql"]}", "{second}"]')
        pytester.makepyprojecttoml("[tool.pytest.ini_options]\n" + "\n".join(lines) + "\n")
    pytester.makepyfile(f"FIELDS = {fields!r}\n" + _SHOW_SETTINGS)
    # an existing server (never reached: the test uses no database), so that a data folder in a
    # private temporary folder is not refused as one the server account (as root: postgres) cannot reach
    shown = _shown_settings(pytester.runpytest("-s", "-p", "no:cacheprovider", "--atlas-dsn", _UNUSED_SERVER))
    expected: dict[str, object] = {field: str(base / target) for field, target in _PATH_TARGETS.items()}
    expected["extra_sql"] = [str(base / "first.sql"), str(base / "second.sql")]
    assert shown == expected


def test_ini_paths_expand_another_users_home(pytester: pytest.Pytester) -> None:
    """``~user/...`` in an ini path is that account's home folder, as on the command line."""
    import os
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name  # an account expanduser knows (not $USER, which may be any name)
    # options read only when used (the cache by a database, the baseline by a gate): nothing is made
    pytester.makeini(f"[pytest]\natlas_cache_dir = ~{user}/atlas-cache\natlas_baseline = ~{user}/atlas-base.json\n")
    pytester.makepyfile("FIELDS = ['cache_dir', 'baseline']\n" + _SHOW_SETTINGS)
    shown = _shown_settings(pytester.runpytest("-s", "-p", "no:cacheprovider", "--atlas-dsn", _UNUSED_SERVER))
    home = os.path.expanduser(f"~{user}")
    assert shown == {"cache_dir": f"{home}/atlas-cache", "baseline": f"{home}/atlas-base.json"}
