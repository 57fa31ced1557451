"""A data folder that cannot hold a server (not writable, not a real file system, someone else's) is
a usage error before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mounts import needs_root, small_tmpfs

USES_DB = "def test_db(atlas_db):\n    atlas_db.execute('SELECT 1')\n"


# -- a data folder that cannot be used: a usage error naming the option, the path, why, what to do --


def test_a_data_folder_on_a_pseudo_file_system_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_DB)
    result = pytester.runpytest("--atlas-data-dir=/proc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--atlas-data-dir: /proc is on a 'proc' file system, which is not a real one (nothing can be stored there)*",
            "*how to fix: give a folder on a disk or a tmpfs with --atlas-data-dir*",
        ]
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.no_fnmatch_line("*passed*")


@needs_root
def test_a_data_folder_of_another_account_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(USES_DB)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    result = pytester.runpytest(f"--atlas-data-dir={theirs}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--atlas-data-dir: {theirs} belongs to *uid 65534*, who could replace pytest-atlas-v2-0 in it*"]
    )
    assert list(theirs.iterdir()) == []  # nothing made in it


@needs_root
def test_a_read_only_data_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_DB)
    with small_tmpfs(4, read_only=True) as frozen:
        result = pytester.runpytest(f"--atlas-data-dir={frozen}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--atlas-data-dir: {frozen} is not writable: it is on a read-only file system",
            "*how to fix: give a folder on a writable file system with --atlas-data-dir",
        ]
    )


@needs_root
def test_a_data_folder_the_user_may_not_write_names_the_user(tmp_path: Path) -> None:
    """As an account without the right to write /var (as `runuser -u rvuser` would be): the checks of
    ``--atlas-data-dir`` raise the error the plugin turns into a usage error (naming the option), not
    PermissionError.
    Run in a child that drops root after importing what it needs (this interpreter lives in root's
    home, which other accounts cannot open)."""
    code = (
        "import os, pwd, sys\n"
        "from pathlib import Path\n"
        "from pytest_atlas.db import server_account\n"
        "from pytest_atlas.db._runtime import choose_base\n"
        "from pytest_atlas.errors import AtlasError\n"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
        "try:\n"
        "    choose_base(Path('/var'), server_account(None))\n"
        "except AtlasError as exc:\n"
        "    print('REFUSED', str(exc))\n"
        "else:\n"
        "    print('ACCEPTED')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60, check=False
    )
    out = done.stdout + done.stderr
    assert "Traceback" not in out, out
    assert out.startswith("REFUSED /var is not writable by 'nobody' (uid 65534)"), out
    assert "how to fix: give a folder of yours with --atlas-data-dir" in out, out
    assert not Path("/var/pytest-atlas-v2-65534").exists()
