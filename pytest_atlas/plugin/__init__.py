"""The pytest plugin (entry point ``pytest11: atlas``). Hooks only.

Options of every area are declared in :mod:`pytest_atlas._config` and registered here in one
``atlas`` group. Each sibling module holds the hooks of one job, loaded through ``pytest_plugins``:

* ``_server``: the report header, kept databases and clean-up notes of the test-database server;
* ``_checks``: check mode and the item protocol contract checks and gates share;
* ``_reporter``: the one reporter (exit status, terminal sections, JSON, step summary), rendering
  through :mod:`pytest_atlas.reporting`;
* ``_baselines``: ``--atlas-baseline`` read once, ``--atlas-save-baseline`` written;
* ``_contract``: ``--atlas-contract`` items; ``_gates`` (with ``_gate_item``): ``--atlas-gates`` items;
* ``_scheduling``: under pytest-xdist, a test that crashed its worker is not run again, and each
  contract item is a scope of its own;
* ``_rerun``: ``--lf``, ``--ff`` and ``--sw`` rerun what a failed check item needs too;
* ``_roster``: every declared gate, so that reports list the ones that did not run;
* ``_assertions``: reward assertions failing in ordinary tests reach the report;
* ``_scrub``: the run's secrets are scrubbed from every report before a reporter sees it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_atlas._config import OPTIONS, AtlasSettings, Option, expected_of, parse_dsn, resolve_settings
from pytest_atlas._dsn import remember_secret, secrets_of
from pytest_atlas.errors import AtlasError

# This module must not import pytest_atlas.fixtures (or the sibling plugin modules) at import time:
# pytest imports the modules named here itself, after marking them for assertion rewriting, and a
# module that is already imported makes it warn "Module already imported so cannot be rewritten" in
# every user's run (seen with editable installs); so a module comes after the ones it imports.
# Hooks import what they need when they run.
# Nor pytest_atlas.db, here or in the modules below at import time: it loads psycopg, which a run
# that uses no database never needs (tests/test_startup_imports.py checks it).
pytest_plugins = [
    "pytest_atlas.fixtures",
    "pytest_atlas.plugin._server",
    "pytest_atlas.plugin._checks",
    "pytest_atlas.plugin._roster",
    "pytest_atlas.plugin._reporter",
    "pytest_atlas.plugin._baselines",
    "pytest_atlas.plugin._contract",
    "pytest_atlas.plugin._gates",
    "pytest_atlas.plugin._rerun",
    "pytest_atlas.plugin._scheduling",
    "pytest_atlas.plugin._assertions",
    "pytest_atlas.plugin._scrub",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("atlas", "pytest-atlas (Atlas SDK test databases, contracts and gates)")
    for option in OPTIONS:
        if option.cli is not None:
            if option.flag:
                group.addoption(
                    option.cli, action="store_true", default=None, dest=_dest(option.field), help=option.help
                )
            else:
                group.addoption(
                    option.cli,
                    action="append" if option.repeated else "store",
                    type=_converter(option),
                    default=None,
                    dest=_dest(option.field),
                    metavar=option.metavar,
                    help=option.help,
                )
        if option.ini is not None:
            # default None: an unset key reads as None, so that the option's default applies
            parser.addini(option.ini, help=option.help.split(". ")[0], type=option.ini_type, default=None)


def _dest(field: str) -> str:
    return f"atlas_{field}"


class _Refused:
    """A command-line value its option's parser refused. Not an argparse error at once: argparse
    would print it before the DSNs of later options, of the environment and of the ini file are
    read, so a password among them (pasted into the wrong option) could not be scrubbed from it;
    :func:`_read_settings` raises it once they are known (a usage error, scrubbed)."""

    def __init__(self, error: AtlasError) -> None:
        self.error = error


def _converter(option: Option) -> Callable[[str], Any]:
    """The argparse ``type=`` of an option: its parser; a refused value is held (:class:`_Refused`)."""
    where = option.cli or option.field

    def convert(raw: str) -> Any:
        try:
            return option.parse(raw, where)
        except AtlasError as exc:
            if option.parse is parse_dsn or "://" in raw:  # a DSN, here or given to another option
                remember_secret(*secrets_of(raw))
            return _Refused(exc)

    convert.__name__ = option.field  # argparse names the type in some messages
    return convert


def learn_secrets(config: pytest.Config) -> None:
    """Remember the passwords of the DSNs the environment and the ini file give (those of the
    command line are known once parsed), so that a usage error cannot show them, whichever option
    it is about and whatever order they are read in; and ``$PGPASSWORD``."""
    remember_secret(os.environ.get("PGPASSWORD"))
    for option in OPTIONS:
        if option.parse is not parse_dsn:
            continue
        texts = [os.environ.get(option.env, "")] if option.env else []
        if option.ini is not None:
            with contextlib.suppress(pytest.UsageError, ValueError, TypeError):  # refused when read
                texts.append(str(config.getini(option.ini) or ""))
        for text in texts:
            if text.strip():
                remember_secret(*secrets_of(text.strip()))


def _read_settings(config: pytest.Config) -> AtlasSettings:
    """The run's settings. Raises AtlasError (or a usage error, already scrubbed) for a bad value:
    callers turn it into a usage error with :func:`~pytest_atlas.plugin._scrub.usage_error`."""
    from pytest_atlas.plugin._scrub import usage_error

    learn_secrets(config)
    cli: dict[str, Any] = {}
    ini: dict[str, Any] = {}
    inidir = _inidir(config)
    for option in OPTIONS:
        if option.cli is not None:
            value = config.getoption(_dest(option.field), default=None)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, _Refused):
                    raise item.error
            cli[option.field] = value
        if option.ini is not None:
            try:
                value = config.getini(option.ini)
            except (pytest.UsageError, ValueError, TypeError) as exc:  # pytest's typed ini values
                raise usage_error(f"invalid value for ini {option.ini} ({exc}): {expected_of(option)}") from None
            if option.ini_type == "paths" and isinstance(value, list):
                value = [_as_written(item, inidir) for item in value]
            ini[option.field] = value
    return resolve_settings(cli, ini, os.environ, inidir=inidir)


def _inidir(config: pytest.Config) -> Path:
    """The folder pytest anchors ``paths`` ini values at: the ini file's, else the invocation folder."""
    return Path(config.inipath.parent if config.inipath is not None else config.invocation_params.dir)


def _as_written(path: Any, inidir: Path) -> str:
    """A ``paths`` ini value as the ini file wrote it: pytest joins every value to the ini folder
    before the plugin sees it, which turns ``~/x`` into ``<inidir>/~/x`` and ``$HOME/x`` into
    ``<inidir>/$HOME/x``, where they no longer expand. A value below the ini folder is given back
    relative to it; resolve_settings expands ``~`` and ``$VAR`` and anchors what stays relative.
    (An absolute path written into the ini folder comes back relative and is anchored there again.)"""
    candidate = Path(path)
    try:
        return str(candidate.relative_to(inidir))
    except ValueError:  # outside the ini folder: it was written absolute
        return str(candidate)


def _check_data_dir(settings: AtlasSettings) -> None:
    """A data folder that cannot hold a server (not writable, on /proc, another account's) is a
    usage error now, not an error of every test that uses the database."""
    if settings.dsn is not None or settings.data_dir is None:
        return
    from pytest_atlas.db import check_data_dir, server_account

    check_data_dir(
        settings.data_dir, server_account(settings.run_as), settings.sources.get("data_dir", "--atlas-data-dir")
    )


#: the files a run writes when asked: checked before anything runs (and again when written)
_OUTPUTS = ("report", "report_html", "save_baseline")


def _check_outputs(settings: AtlasSettings) -> None:
    """A path to write that is a link, another account's file, in a folder someone else could swap
    it in, or in a folder that cannot take files (not writable, read-only, on /proc) is a usage
    error now, not a file written through a planted link, or not written, at the end."""
    paths = {field: getattr(settings, field) for field in _OUTPUTS if getattr(settings, field) is not None}
    if not paths:
        return
    from pytest_atlas.db import check_output

    for field, path in paths.items():
        try:
            check_output(path)
        except AtlasError as exc:
            raise AtlasError(f"{settings.sources.get(field, field)}: {exc.problem}", hint=exc.hint) from None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = _read_settings(config)
        if settings.dsn is None and settings.run_as is not None:
            from pytest_atlas.db import server_account

            server_account(settings.run_as)  # an unknown or root account is a usage error, not a test error
        _check_data_dir(settings)
        _check_outputs(settings)
    except AtlasError as exc:
        from pytest_atlas.plugin._scrub import usage_error

        raise usage_error(exc) from None
    from pytest_atlas.fixtures import SETTINGS_KEY

    config.stash[SETTINGS_KEY] = settings
