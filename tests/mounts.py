"""Small file systems of a test's own, to run out of space for real (or to write to a read-only
one): a tmpfs mounted for the test and unmounted after it. Mounting needs root: the tests that use
these skip for any other account, saying so (CI runs as root, so they run there)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOT_ROOT = "mounting a small tmpfs to fill needs root (CI runs as root, so this test runs there)"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=NOT_ROOT)


@contextlib.contextmanager
def small_tmpfs(megabytes: int, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``megabytes`` mounted on a new folder in /tmp (root's, 0755, so that the server
    account can reach what is made in it), unmounted and removed at the end."""
    point = Path(tempfile.mkdtemp(prefix="atlas-small-", dir="/tmp"))
    os.chmod(point, 0o755)
    options = f"size={megabytes}m,mode=0755" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        point.rmdir()
        pytest.fail(f"could not mount a tmpfs on {point}: {done.stderr.strip()}", pytrace=False)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
        shutil.rmtree(point, ignore_errors=True)


def fill(folder: Path, *, leave: int = 0) -> Path:
    """Fill the file system of ``folder`` with one file until at most ``leave`` bytes are free
    (0: until writing fails with ENOSPC). Returns the file (remove it to free the space)."""
    filler = folder / "filler"
    st = os.statvfs(folder)
    want = max(st.f_bavail * st.f_frsize - leave, 0)
    chunk = b"\0" * (1 << 16)
    written = 0
    with open(filler, "wb", buffering=0) as out:
        try:
            while leave == 0 or written + len(chunk) <= want:
                written += out.write(chunk)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize
