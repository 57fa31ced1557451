"""Creating, locking and removing the plugin's files without following anyone's symlinks.

Every folder the plugin keeps on /dev/shm, in the temp folder or in the cache is made by
:func:`ensure_dir`: ``mkdir`` (never following a link), then opened with ``O_NOFOLLOW`` and checked
through the open descriptor: a real folder, owned by the effective user, writable by nobody else.
Once such a folder is checked, nobody else can add, rename or replace anything inside it, so paths
below it are safe to use; the sticky bit of /dev/shm and /tmp keeps others from renaming the
folder itself (a parent that is writable by others and not sticky is refused).

The way to such a folder (and to a report's) is walked by :func:`open_folders`: from /, one name
at a time, each opened relative to the descriptor of the folder before it, missing ones made the
same way. A link of another account on the way is refused (root's and the user's own are
followed), and so is a folder on the way that someone else could swap the next name in; nothing
is looked up again by its full path between a check and the ``mkdir`` it guards.

Liveness is an ``flock``: the process that owns a run folder or a temporary folder holds a lock on
a file in it for as long as it lives; the kernel drops the lock when the process dies, however it
dies, and the lock is visible to every process that shares the file system, whatever its PID
namespace or container. A folder is removed by someone else only after taking that lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import pwd
import secrets
import shutil
import stat
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pytest_atlas.errors import ProvisioningError

__all__ = [
    "FileLock",
    "FileRecord",
    "NoSpaceError",
    "UnsafePathError",
    "UnusableFolderError",
    "check_dir_fd",
    "check_output",
    "check_parent",
    "check_usable",
    "copy_regular_tree",
    "create_private_file",
    "digest_file",
    "ensure_dir",
    "filesystem_of",
    "free_bytes",
    "locked",
    "make_private_dir",
    "no_space",
    "open_folders",
    "read_regular",
    "refuse_unusable",
    "remove_tree",
    "size_text",
    "write_output",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class UnsafePathError(ProvisioningError):
    """A folder or file the plugin wanted to use is not safe to use (a link, someone else's, or
    writable by others)."""


class UnusableFolderError(ProvisioningError):
    """A folder the plugin was told to write in cannot hold files: not writable by this account, on
    a read-only file system, or on a kernel's pseudo file system (/proc, /sys)."""


class NoSpaceError(ProvisioningError):
    """A file system the plugin writes to is full (ENOSPC)."""


#: file systems that show the kernel's state: nothing the plugin writes can be stored on them
PSEUDO_FILESYSTEMS = frozenset(
    {
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "debugfs",
        "tracefs",
        "securityfs",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "devpts",
        "mqueue",
        "binfmt_misc",
        "efivarfs",
        "selinuxfs",
        "nsfs",
        "autofs",
        "rpc_pipefs",
        "hugetlbfs",
    }
)


def _unescape_mount(field: str) -> str:
    """A path of /proc/self/mountinfo, whose spaces, tabs, newlines and backslashes are octal escapes."""
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def filesystem_of(fd: int) -> str | None:
    """The type of the file system the open ``fd`` is on (its mount with the longest mount point
    that holds it, from /proc/self/mountinfo), or None when that cannot be told."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    best, kind = "", None
    for line in lines:
        head, sep, tail = line.partition(" - ")
        fields = head.split()
        if not sep or len(fields) < 5 or not tail.split():
            continue
        point = _unescape_mount(fields[4])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):  # a later mount on the same point hides an earlier one
            best, kind = point, tail.split()[0]
    return kind


def free_bytes(path: Path) -> int | None:
    """The bytes an unprivileged account may still write on the file system of ``path`` (or of its
    nearest existing folder), or None when it cannot be told."""
    for folder in (Path(os.path.abspath(path)), *Path(os.path.abspath(path)).parents):
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def size_text(size: int) -> str:
    """A size as messages show it: "38 MB", or "12 KB" below a megabyte."""
    if size >= 1 << 20:
        return f"{size / (1 << 20):.0f} MB"
    return f"{max(size, 0) / 1024:.0f} KB"


def no_space(path: Path, needed: int | None, fix: str, *, detail: str = "") -> NoSpaceError:
    """The error of a write to ``path`` that failed for want of space: how much is free there, and
    about how much was needed (``detail``: for what)."""
    free = free_bytes(path)
    shown = "free space unknown" if free is None else f"{size_text(free)} free"
    if needed:
        shown += f", needs ~{size_text(needed)}" + (f": {detail}" if detail else "")
    return NoSpaceError(f"no space left on {path} ({shown})", hint=fix)


def refuse_unusable(fd: int, shown: Path, *, elsewhere: str) -> None:
    """Raise UnusableFolderError unless files can be made in the open folder ``fd`` (at ``shown``):
    on a real file system, not a read-only one, and writable by the effective user. ``elsewhere``
    ends each hint: how to name another folder ("with --atlas-data-dir")."""
    kind = filesystem_of(fd)
    if kind in PSEUDO_FILESYSTEMS:
        raise UnusableFolderError(
            f"{shown} is on a {kind!r} file system, which is not a real one (nothing can be stored there)",
            hint=f"give a folder on a disk or a tmpfs {elsewhere}",
        )
    if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
        raise UnusableFolderError(
            f"{shown} is not writable: it is on a read-only file system",
            hint=f"give a folder on a writable file system {elsewhere}",
        )
    if not os.access(".", os.W_OK | os.X_OK, dir_fd=fd, effective_ids=True):
        raise UnusableFolderError(
            f"{shown} is not writable by {_owner(os.geteuid())}",
            hint=f"give a folder of yours {elsewhere} (one in your home, say), or ask its owner to make you one",
        )


def check_usable(path: Path, *, elsewhere: str, opener: Callable[[Path], int | None] | None = None) -> None:
    """Raise UnusableFolderError unless files can be made in the folder ``path``, or, when it is
    missing, in the nearest folder above it that exists (see :func:`refuse_unusable`). Makes
    nothing; each folder is opened by ``opener`` (default :func:`open_folders`, which checks the
    way there)."""
    path = Path(os.path.abspath(path))
    opener = opener or open_folders
    for found in (path, *path.parents):
        fd = opener(found)
        if fd is not None:
            break
    else:  # pragma: no cover - / exists
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), "/")
    try:
        refuse_unusable(fd, found, elsewhere=elsewhere)
    except UnusableFolderError as exc:
        if found == path:
            raise
        raise UnusableFolderError(f"{path} cannot be made: {exc.problem}", hint=exc.hint) from None
    finally:
        os.close(fd)


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name!r} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _refuse(path: Path, problem: str, fix: str) -> UnsafePathError:
    return UnsafePathError(f"{path} {problem}", hint=fix)


def check_dir_fd(fd: int, path: Path, *, uid: int | None = None) -> None:
    """Raise UnsafePathError unless the open folder ``fd`` (at ``path``) belongs to ``uid`` (default:
    the effective user) and is writable by nobody else."""
    uid = os.geteuid() if uid is None else uid
    st = os.fstat(fd)
    if not stat.S_ISDIR(st.st_mode):  # pragma: no cover - O_DIRECTORY already refuses
        raise _refuse(path, "is not a folder", "remove it, or choose another folder")
    if st.st_uid != uid:
        raise _refuse(
            path,
            f"belongs to {_owner(st.st_uid)}, not to {_owner(uid)}",
            f"if nobody uses it, remove it (as its owner or root: rm -r {path}); or choose another folder "
            "(--atlas-data-dir / --atlas-cache-dir)",
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise _refuse(
            path,
            f"is writable by other users (mode {stat.S_IMODE(st.st_mode):o})",
            f"if it is yours, run 'chmod go-w {path}'; or choose another folder",
        )


_FOLDER_OPTIONS = "(--atlas-data-dir / --atlas-cache-dir)"
_ANOTHER_FOLDER = f"choose another folder {_FOLDER_OPTIONS}"
_MAX_LINKS = 40  # as the kernel's own limit: more links than this on one path is a loop
_MAX_STEPS = 1000  # components opened for one path, retries included (a name that keeps changing)


def check_parent(path: Path, *, elsewhere: str = _FOLDER_OPTIONS) -> None:
    """A folder we create in ``path.parent`` stays ours only if nobody else can rename it away: no
    folder on the way there is another account's link, and each, ``path.parent`` included, is ours
    or root's and not writable by others, unless it is sticky (/tmp, /dev/shm). ``elsewhere`` says
    how to choose another place (in the hint)."""
    fd = open_folders(Path(os.path.abspath(path)).parent, elsewhere=elsewhere)
    if fd is None:
        return  # it does not exist: mkdir fails later with the real reason
    try:
        _check_holder(os.fstat(fd), path, elsewhere)
    finally:
        os.close(fd)


def _check_holder(st: os.stat_result, path: Path, elsewhere: str) -> None:
    """``st`` is of ``path.parent``: see :func:`check_parent`. The owner of a folder may rename
    anything in it, sticky or not, so it must be us or root."""
    sticky = bool(st.st_mode & stat.S_ISVTX)
    others_write = bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
    if st.st_uid not in (0, os.geteuid()):
        raise _refuse(
            path.parent,
            f"belongs to {_owner(st.st_uid)}, who could replace {path.name} in it",
            f"choose a folder of your own {elsewhere}",
        )
    if others_write and not sticky:
        raise _refuse(
            path.parent,
            f"is writable by other users and not sticky (mode {stat.S_IMODE(st.st_mode):o}), so they could "
            f"replace {path.name} in it",
            f"choose another folder {elsewhere}, or 'chmod +t' it",
        )


def _open_at(dir_fd: int, name: str) -> int | None:
    """The folder ``name`` in ``dir_fd``, opened without following a link; None when ``name`` is a
    link or not a folder (FileNotFoundError when it is missing)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            return None
        raise


def open_folders(
    path: Path,
    *,
    make: int | None = None,
    chmod: bool = True,
    holders: bool = True,
    elsewhere: str = _FOLDER_OPTIONS,
    instead: str = _ANOTHER_FOLDER,
    not_folder: str = "remove it, or choose another folder",
) -> int | None:
    """Open the folder ``path`` (absolute) by walking to it from / one name at a time, each opened
    relative to the descriptor of the folder before it with ``O_NOFOLLOW``: nothing is ever looked
    up again by its full path, so nothing can be swapped between a check and its use. Returns the
    open descriptor (the caller closes it), or None when a folder on the way is missing and
    ``make`` is None; with ``make``, a missing folder is made (``mkdir`` relative to its parent's
    descriptor, mode ``make``, and with ``chmod`` set to it whatever the umask) and opened the same
    way, so a link planted at its name meanwhile is found, never followed.

    On the way, refused with UnsafePathError: a symbolic link of another account (a link of root's,
    like /var/run -> /run or a /tmp that is a link, or one of the running account's own, is
    followed: only they could have made it, and in a folder that passes the checks nobody else can
    replace it), something that is not a folder, and, with ``holders``, a folder in which somebody
    else could swap what comes next (see :func:`check_parent`). ``elsewhere``, ``instead`` and
    ``not_folder`` say in the hints how to choose another place."""
    me = os.geteuid()
    parts = list(Path(os.path.abspath(path)).parts[1:])
    shown = Path("/")
    fd = os.open("/", _DIR_FLAGS)
    links = steps = 0
    try:
        while parts:
            steps += 1
            if steps > _MAX_STEPS:
                raise _refuse(shown, "keeps changing while pytest-atlas opens it", instead)
            name = parts[0]
            child = shown / name
            if holders:
                _check_holder(os.fstat(fd), child, elsewhere)
            created = False
            try:
                sub = _open_at(fd, name)
            except FileNotFoundError:
                if make is None:
                    return None
                try:
                    os.mkdir(name, make, dir_fd=fd)
                    created = True
                except FileExistsError:
                    pass  # made meanwhile, by us or by someone else: looked at below
                try:
                    sub = _open_at(fd, name)
                except FileNotFoundError:
                    continue  # removed again: once more
            if sub is None:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone meanwhile: once more
                if not stat.S_ISLNK(st.st_mode):
                    raise _refuse(child, "is a file" if stat.S_ISREG(st.st_mode) else "is not a folder", not_folder)
                try:
                    target = os.readlink(name, dir_fd=fd)
                    again = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # gone meanwhile: once more
                if (again.st_ino, again.st_dev) != (st.st_ino, st.st_dev):
                    continue  # replaced between the two looks: the target read may be the new one's
                if st.st_uid not in (0, me):
                    raise _refuse(
                        child,
                        f"is a symbolic link of {_owner(st.st_uid)} (to {target}); pytest-atlas never follows "
                        "another account's links",
                        f"if you did not make it, someone else did: remove it (rm {child}) and tell your admin; "
                        f"or {instead}",
                    )
                links += 1
                if links > _MAX_LINKS:
                    raise _refuse(child, f"is one of more than {_MAX_LINKS} links in a row (a loop?)", instead)
                # ``shown`` holds no link (each was replaced by its target), so ".." in the target
                # may be taken by name; the walk starts again from / with every check
                parts = list(Path(os.path.normpath(os.path.join(shown, target, *parts[1:]))).parts[1:])
                os.close(fd)
                fd = os.open("/", _DIR_FLAGS)
                shown = Path("/")
                continue
            os.close(fd)
            fd = sub
            if created and chmod:
                os.fchmod(fd, make or 0)  # our own new folder: the mode asked for, whatever the umask
                check_dir_fd(fd, child)
            shown = child
            parts.pop(0)
        result, fd = fd, -1
        return result
    finally:
        if fd >= 0:
            os.close(fd)


def ensure_dir(path: Path, mode: int = 0o700, *, parents: bool = False, parent_mode: int = 0o755) -> Path:
    """Create ``path`` (``mode``; with ``parents``, missing parents too, ``parent_mode``) unless it
    exists, and check it: not a link, a real folder, ours, writable by nobody else; on the way to
    it, no link of another account and no folder somebody else could swap it in
    (:func:`open_folders`). Never changes the mode of a folder that already exists. Raises
    UnsafePathError saying what is wrong."""
    path = Path(os.path.abspath(path))
    holder = open_folders(path.parent, make=parent_mode if parents else None)
    if holder is None:
        raise FileNotFoundError(errno.ENOENT, f"a folder above it is missing: {os.strerror(errno.ENOENT)}", str(path))
    try:
        _check_holder(os.fstat(holder), path, _FOLDER_OPTIONS)
        for _attempt in range(_MAX_STEPS):
            created = False
            try:
                os.mkdir(path.name, mode, dir_fd=holder)
                created = True
            except FileExistsError:
                pass
            try:
                fd = _open_at(holder, path.name)
                if fd is not None:
                    break
                st = os.stat(path.name, dir_fd=holder, follow_symlinks=False)
                target = os.readlink(path.name, dir_fd=holder) if stat.S_ISLNK(st.st_mode) else ""
            except FileNotFoundError:
                continue  # removed meanwhile (by whoever made it): once more
            if stat.S_ISLNK(st.st_mode):
                raise _refuse(
                    path,
                    f"is a symbolic link (to {target}); pytest-atlas never follows links to its folders",
                    f"if you did not make it, someone else did: remove it (rm {path}) and tell your admin; "
                    f"or {_ANOTHER_FOLDER}",
                )
            raise _refuse(path, "exists and is not a folder", "remove it, or choose another folder")
        else:
            raise _refuse(path, "keeps changing while pytest-atlas makes it", _ANOTHER_FOLDER)
        try:
            check_dir_fd(fd, path)
            if created:
                os.fchmod(fd, mode)  # our own new folder: the mode asked for, whatever the umask
        finally:
            os.close(fd)
    finally:
        os.close(holder)
    return path


def make_private_dir(parent: Path, prefix: str, mode: int = 0o700) -> Path:
    """A new folder ``<prefix><random>`` in ``parent`` (reached as :func:`open_folders` does, and
    checked the same way), mode ``mode``: the race-free ``mkdtemp``."""
    parent = Path(os.path.abspath(parent))
    holder = open_folders(parent)
    if holder is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(parent))
    try:
        for _attempt in range(100):
            name = f"{prefix}{secrets.token_hex(4)}"
            _check_holder(os.fstat(holder), parent / name, _FOLDER_OPTIONS)
            try:
                os.mkdir(name, 0o700, dir_fd=holder)
            except FileExistsError:
                continue
            fd = os.open(name, _DIR_FLAGS, dir_fd=holder)
            try:
                os.fchmod(fd, mode)
                check_dir_fd(fd, parent / name)
            finally:
                os.close(fd)
            return parent / name
        raise FileExistsError(errno.EEXIST, "no free name", str(parent / prefix))
    finally:
        os.close(holder)


def create_private_file(path: Path, data: bytes = b"", *, mode: int = 0o600) -> None:
    """Create a new file (never an existing one, never through a link) and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        if data:
            os.write(fd, data)
    finally:
        os.close(fd)


_OUTPUT_ELSEWHERE = "(give the option a path there)"
_OUTPUT_USABLE = "and a path in it to the option"
_OUTPUT_NO_SPACE = "free space there, or give the option a path on a file system with room"
_IN_A_FOLDER = "name a file in a folder"


def check_output(path: Path) -> None:
    """Raise UnsafePathError unless a file the user asked for (a report, a baseline) may be written
    at ``path``: no folder on the way is a link another account made or something other than a
    folder, no folder that exists on the way is one in which somebody else could swap what comes
    next (see :func:`check_parent`: a folder above the file's, renamed away and replaced by a
    link, would move the file elsewhere too), and ``path`` itself is not a link, not a directory, not
    a special file and not another account's file. The one check of an output path: the plugin runs
    it on every report and baseline option before anything runs, :func:`write_output` again when it
    writes."""
    path = Path(os.path.abspath(path))
    fd = _output_folder(path, make=False)
    if fd is None:  # its folder is made when the file is written: where it would be made must take files
        check_usable(path.parent, elsewhere=_OUTPUT_USABLE, opener=_open_output_folder)
        return
    try:
        _check_holder(os.fstat(fd), path, _OUTPUT_ELSEWHERE)
        refuse_unusable(fd, path.parent, elsewhere=_OUTPUT_USABLE)
        _check_target(path, dir_fd=fd)
    finally:
        os.close(fd)


def _output_folder(path: Path, *, make: bool, holders: bool = True) -> int | None:
    """The folder of the output file ``path``, opened by :func:`open_folders` (made if missing with
    ``make``, as ``mkdir -p`` would: mode 0777 less the umask), or None if it is missing."""
    return open_folders(
        path.parent,
        make=0o777 if make else None,
        chmod=False,
        holders=holders,
        elsewhere=_OUTPUT_ELSEWHERE,
        instead="give another path",
        not_folder=_IN_A_FOLDER,
    )


def _open_output_folder(folder: Path) -> int | None:
    """``folder`` opened as the folder of an output file is (None when it is missing)."""
    return open_folders(folder, elsewhere=_OUTPUT_ELSEWHERE, instead="give another path", not_folder=_IN_A_FOLDER)


#: the remedy for a path that is no file to write a report to: never to remove what is there
_REGULAR_FILE = "give the path of a regular file (a report is written whole, to a file), e.g. ./atlas-report.json"


def _link_remedy(path: Path, target: str) -> str:
    """How to fix an output path that is the link ``path`` (to ``target``): remove it, unless it is
    the system's (in /dev or /proc, or to there: ``/dev/stdout`` is a link to ``/proc/self/fd/1``)."""
    if any(str(where).startswith(("/dev/", "/proc/")) for where in (path, target)):
        return _REGULAR_FILE
    return f"remove it (rm {path}), or give another path"


def _check_target(path: Path, *, dir_fd: int | None = None) -> None:
    """``path`` (the file itself; by its name in ``dir_fd`` when given) is missing, or a regular
    file of ours."""
    name: str | Path = path.name if dir_fd is not None else path
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError:
            target = "?"  # removed meanwhile: refused all the same
        raise _refuse(
            path,
            f"is a symbolic link (to {target}); pytest-atlas never writes through links",
            _link_remedy(path, target),
        )
    if stat.S_ISDIR(st.st_mode):
        raise _refuse(path, "is a directory", f"name a file in it, e.g. {path / 'atlas.json'}")
    if not stat.S_ISREG(st.st_mode):
        # a device, a socket or a pipe: a report is written whole to a file, never to these
        raise _refuse(path, "exists and is not a regular file", _REGULAR_FILE)
    if st.st_uid != os.geteuid():
        raise _refuse(
            path,
            f"belongs to {_owner(st.st_uid)}, not to {_owner(os.geteuid())}",
            "give a path of your own, or remove the file (as its owner or root)",
        )


def write_output(path: Path, data: bytes) -> Path:
    """Write a file the user asked for (a report, a baseline) whole, never through a link: checked
    by :func:`check_output`, its missing folders made (each relative to its checked parent, see
    :func:`open_folders`), the data written to a new file beside it
    and renamed over it (the rename replaces whatever name is there, it never follows it). Raises
    UnsafePathError for a path someone else may control, UnusableFolderError for a folder that
    cannot take files, NoSpaceError when its file system is full (nothing is left of the file), and
    OSError (naming the path) when it cannot be written otherwise."""
    path = Path(os.path.abspath(path))
    try:
        return _write_output(path, data)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space(path.parent, len(data), _OUTPUT_NO_SPACE) from None
        if not exc.filename:  # a write says nothing of the file it failed on
            exc.filename = str(path)
        raise


def _write_output(path: Path, data: bytes) -> Path:
    check_output(path)  # refused before any folder is made
    fd = _output_folder(path, make=True)  # the folders made relative to their checked parents
    assert fd is not None
    try:
        _check_holder(os.fstat(fd), path, _OUTPUT_ELSEWHERE)
        _check_target(path, dir_fd=fd)  # what appeared meanwhile
        draft = f".{path.name}.{secrets.token_hex(4)}"
        out = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=fd)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
            finally:
                os.close(out)
            _check_target(path, dir_fd=fd)
            os.rename(draft, path.name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(draft, dir_fd=fd)
            raise
    finally:
        os.close(fd)
    return path


def append_output(path: Path, data: bytes) -> Path:
    """Append ``data`` to a file a CI system names (``$GITHUB_STEP_SUMMARY``), never through a link.

    A missing file is written as :func:`write_output` writes one. An existing one is opened without
    following a link and without waiting (a FIFO nobody reads), and must be a regular file with one
    name (writing through a hard link writes the file of every other name too); no folder on the
    way may be another account's link. The file may belong to another account (a CI runner's, in a
    container that runs as root): appending to a file its owner can write anyway gives them nothing.
    Raises UnsafePathError for a path that is refused, OSError when it cannot be written."""
    path = Path(os.path.abspath(path))
    folder = _output_folder(path, make=False, holders=False)
    if folder is None:
        return write_output(path, data)
    try:
        fd = os.open(path.name, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except FileNotFoundError:
        fd = None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            target = os.readlink(path.name, dir_fd=folder)
            raise _refuse(
                path,
                f"is a symbolic link (to {target}); pytest-atlas never writes through links",
                _link_remedy(path, target),
            ) from None
        if exc.errno == errno.ENXIO:  # a FIFO that nobody reads
            raise _refuse(path, "is not a regular file", _REGULAR_FILE) from None
        raise
    finally:
        os.close(folder)
    if fd is None:
        return write_output(path, data)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, "is not a regular file", _REGULAR_FILE)
        if st.st_nlink != 1:
            raise _refuse(
                path,
                f"has {st.st_nlink} names (hard links): appending to it would change the file of each",
                "remove it, or give another path",
            )
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise no_space(path.parent, len(data), _OUTPUT_NO_SPACE) from None
            raise
    finally:
        os.close(fd)
    return path


def read_regular(path: Path, *, limit: int = 1 << 16) -> str | None:
    """The text of a regular file that someone else may control (a server's ``postmaster.pid``):
    never through a link, never blocking on a FIFO, at most ``limit`` bytes. None if it is missing
    or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def remove_tree(path: Path) -> None:
    """Remove a folder tree the plugin made. Never follows links: a link at ``path`` is refused
    (left in place), links inside are removed as links (``shutil.rmtree`` works on descriptors)."""
    if os.path.islink(path):
        return
    shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------
# locks
# ----------------------------------------------------------------------------------------------------


class FileLock:
    """An ``flock`` on a file (or folder) in a folder of ours, held until :meth:`release`.

    A lock file may be removed by whoever holds its lock (a reaper cleaning up); a process that
    then acquires the old, unlinked file notices that the path names another file now and tries
    again, so two processes never both believe they hold the lock of one path.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(
        cls, path: Path, *, shared: bool = False, blocking: bool = True, create: bool = True
    ) -> FileLock | None:
        """The lock on ``path``; None when ``blocking`` is False and someone else holds it (or when
        the file is missing and ``create`` is False)."""
        op = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        while True:
            try:
                fd = os.open(path, flags, 0o600)
            except IsADirectoryError:
                fd = os.open(path, _DIR_FLAGS)
            except FileNotFoundError:
                if create:
                    raise
                return None
            try:
                fcntl.flock(fd, op)
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            try:
                now = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
            held = os.fstat(fd)
            if now is not None and (now.st_ino, now.st_dev) == (held.st_ino, held.st_dev):
                return cls(path, fd)
            os.close(fd)  # removed or replaced while we waited: lock the file that is there now
            if not create and now is None:
                return None

    @classmethod
    def try_acquire(cls, path: Path) -> FileLock | None:
        """The exclusive lock on an existing ``path`` if nobody holds it, else None."""
        try:
            return cls.acquire(path, blocking=False, create=False)
        except OSError:
            return None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@contextlib.contextmanager
def locked(path: Path, *, shared: bool = False) -> Iterator[FileLock]:
    """Hold the lock on ``path`` (created if missing) for the block."""
    lock = FileLock.acquire(path, shared=shared)
    assert lock is not None
    try:
        yield lock
    finally:
        lock.release()


# ----------------------------------------------------------------------------------------------------
# copying a cluster out of a folder someone else controls
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRecord:
    """One regular file of a copied tree: its size and CRC-32 (for the cache's manifest)."""

    size: int
    crc: int


def digest_file(path: Path) -> FileRecord:
    """Size and CRC-32 of a regular file (read in 1 MiB chunks)."""
    crc = 0
    size = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            n = handle.readinto(buffer)
            if not n:
                break
            crc = zlib.crc32(view[:n], crc)
            size += n
    return FileRecord(size, crc)


def copy_regular_tree(src: Path, dst: Path, *, owner: int, skip: frozenset[str] = frozenset()) -> dict[str, FileRecord]:
    """Copy the folders and regular files under ``src`` (which ``owner`` controls) into the new
    folder ``dst`` (ours), returning the size and CRC-32 of every file by relative path.

    Everything is opened relative to descriptors with ``O_NOFOLLOW``: a link, a device, a FIFO, a
    file with a second hard link or one not owned by ``owner`` stops the copy (UnsafePathError), so
    nothing planted in ``src`` travels, and nothing outside ``src`` is ever read. Top-level names in
    ``skip`` are left out. Modes are kept (group and other bits dropped)."""
    records: dict[str, FileRecord] = {}
    src_fd = os.open(src, _DIR_FLAGS)
    try:
        check_dir_fd(src_fd, src, uid=owner)
        os.mkdir(dst, 0o700)
        dst_fd = os.open(dst, _DIR_FLAGS)
        try:
            _copy_dir(src_fd, dst_fd, src, "", owner, skip, records)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return records


def _copy_dir(
    src_fd: int,
    dst_fd: int,
    src: Path,
    rel: str,
    owner: int,
    skip: frozenset[str],
    records: dict[str, FileRecord],
) -> None:
    with os.scandir(src_fd) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        if not rel and name in skip:
            continue
        child = f"{rel}{name}"
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            fd = os.open(name, _DIR_FLAGS, dir_fd=src_fd)
            try:
                check_dir_fd(fd, src / child, uid=owner)
                os.mkdir(name, stat.S_IMODE(st.st_mode) & 0o700, dir_fd=dst_fd)
                sub = os.open(name, _DIR_FLAGS, dir_fd=dst_fd)
                try:
                    _copy_dir(fd, sub, src, child + "/", owner, frozenset(), records)
                finally:
                    os.close(sub)
            finally:
                os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            records[child] = _copy_file(src_fd, dst_fd, name, src / child, owner)
        else:
            raise UnsafePathError(
                f"{src / child} is not a regular file or folder (a link or a special file), so the "
                "cluster is not cached",
                hint="something other than PostgreSQL changed the server's data folder; rerun with --atlas-no-cache",
            )


def _copy_file(src_fd: int, dst_fd: int, name: str, shown: Path, owner: int) -> FileRecord:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != owner or st.st_nlink != 1:
            raise UnsafePathError(
                f"{shown} is not a plain file of the server's account (owner uid {st.st_uid}, "
                f"{st.st_nlink} links), so the cluster is not cached",
                hint="something other than PostgreSQL changed the server's data folder; rerun with --atlas-no-cache",
            )
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst_fd)
        try:
            os.fchmod(out, stat.S_IMODE(st.st_mode) & 0o700)
            crc = 0
            size = 0
            while True:
                chunk = os.read(fd, _CHUNK)
                if not chunk:
                    break
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return FileRecord(size, crc)
