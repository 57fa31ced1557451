"""``python -m pytest_atlas``: look after the cluster cache and what ``--atlas-keep-db`` kept.

    python -m pytest_atlas cache info      what the cache holds, on disk and in memory
    python -m pytest_atlas cache clear     remove every entry no run is using
    python -m pytest_atlas kept            the kept servers: test id -> database -> connect command
    python -m pytest_atlas kept --remove   stop and remove them
    python -m pytest_atlas kept --remove FOLDER...
                                           stop and remove just those (as the summary prints them)
    python -m pytest_atlas kept --dsn DSN  the databases runs kept on that server, with the role that
                                           owns each (with --remove: drop those of the DSN's role whose
                                           run has ended, and what its dead runs left; nothing local
                                           is touched)

Exit status 0 when done, 1 when something was left (in use by a live run), 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from pytest_atlas._config import parse_dsn
from pytest_atlas._dsn import Dsn, hide_dsn_passwords
from pytest_atlas._table import render_table
from pytest_atlas.db import (
    cache_report,
    clear_cache_lines,
    drop_kept_databases,
    kept_databases,
    kept_runs,
    remove_kept,
)
from pytest_atlas.errors import AtlasError, ConfigError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors (its own, quoting a value it refused, and ours) show
    no password of a DSN given where it does not belong."""

    def error(self, message: str) -> NoReturn:
        super().error(hide_dsn_passwords(message))


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m pytest_atlas", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cache = sub.add_parser("cache", help="show or clear the cluster cache")
    cache.add_argument("action", choices=["info", "clear"])
    cache.add_argument("--cache-dir", type=Path, default=None, help="as --atlas-cache-dir (default: the usual one)")
    cache.add_argument("--data-dir", type=Path, default=None, help="as --atlas-data-dir (where the hot tier is)")
    kept = sub.add_parser("kept", help="list or remove what --atlas-keep-db kept")
    kept.add_argument("--remove", action="store_true", help="stop and remove the kept servers")
    kept.add_argument(
        "folders", nargs="*", type=Path, metavar="FOLDER", help="with --remove: only these kept server folders"
    )
    kept.add_argument("--data-dir", type=Path, default=None, help="as --atlas-data-dir")
    kept.add_argument(
        "--dsn", default=None, help="an existing server: list the databases runs kept there (with --remove: drop them)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    # every option is checked before anything is removed
    for option in ("cache_dir", "data_dir"):
        folder = getattr(args, option, None)
        if folder is not None and os.path.lexists(folder) and (os.path.islink(folder) or not os.path.isdir(folder)):
            name = "--" + option.replace("_", "-")
            parser.error(f"{name} {folder}: not a folder (give a folder, or leave {name} out)")
    if getattr(args, "folders", None) and not args.remove:
        parser.error("a FOLDER is only for --remove (kept --remove FOLDER...)")
    if getattr(args, "dsn", None) is not None and (args.folders or args.data_dir is not None):
        parser.error("--dsn acts only on that server's databases: give FOLDERs or --data-dir in a separate command")
    try:
        if getattr(args, "dsn", None) is not None:
            args.dsn = parse_dsn(args.dsn, "--dsn")
            if args.dsn is None:
                parser.error("--dsn: give the server's DSN (it was empty)")
        if args.command == "cache":
            return _cache(args)
        return _kept(args)
    except ConfigError as exc:  # an option's value
        _say(f"pytest-atlas: {exc}", file=sys.stderr)
        return 2
    except AtlasError as exc:
        _say(f"pytest-atlas: {exc}", file=sys.stderr)
        return 1


def _say(text: str, file: TextIO | None = None) -> None:
    """Print a line (or lines) of this command: a path given to it may be a DSN pasted into the
    wrong place (``kept --remove postgresql://...``), which shows no password."""
    print(hide_dsn_passwords(text), file=file)


def _cache(args: argparse.Namespace) -> int:
    if args.action == "info":
        _say("\n".join(cache_report(args.cache_dir, args.data_dir).lines()))
        return 0
    lines, status = clear_cache_lines(args.cache_dir, args.data_dir)
    _say("\n".join(lines))
    return status


def _kept(args: argparse.Namespace) -> int:
    if args.dsn is not None:  # only what is on that server, never a local kept server
        return _kept_on_server(args.dsn, remove=args.remove)
    status = 0
    if args.remove:
        removed, left = remove_kept(args.data_dir, only=args.folders)
        for line in removed:
            _say(f"removed {line}")
        for line in left:
            _say(f"left {line}")
            status = 1
        return status
    runs = kept_runs(args.data_dir)
    if not runs:
        _say("nothing kept")
    for run in runs:
        _say(f"{run.path}: server {'running' if run.running else 'not running'}")
        if run.rows:
            _say(render_table([["test", "database", "connect"], *run.rows]))
    if runs:
        _say("remove them with: python -m pytest_atlas kept --remove")
    return status


def _kept_on_server(dsn: Dsn, *, remove: bool) -> int:
    if remove:
        dropped, kept = drop_kept_databases(dsn)
        for name in dropped:
            _say(f"dropped {name}")
        for line in kept:
            _say(f"left {line}")
        return 1 if kept else 0
    rows = kept_databases(dsn)
    if not rows:
        _say(f"no kept databases on {dsn}")
        return 0
    _say(render_table([["database", "run", "run state", "owner"], *rows]))
    _say(
        "drop those of your role whose run has ended (and what its dead runs left) with: "
        "python -m pytest_atlas kept --remove --dsn <the same DSN>"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
