"""The files a run writes on request (--atlas-report, --atlas-report-html, --atlas-save-baseline)
are never written through a link or into a folder someone else controls: a path someone may have
planted is refused before anything runs, one planted while the run ran is refused when it is
written, and a path that cannot be written is a clear error, not a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)
from tests.mounts import fill, needs_root, small_tmpfs

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as other accounts (CI runs as root)")
NO_DB = "def test_plain():\n    pass\n"
OPTIONS = ("--atlas-report", "--atlas-report-html", "--atlas-save-baseline")


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.write_text("precious\n")
    return path


@pytest.mark.parametrize("device", ["/dev/stdout", "/dev/null"])
def test_a_device_as_report_path_is_refused_without_advice_to_remove_it(pytester: pytest.Pytester, device: str) -> None:
    """A report is a file written whole: a device (or a link to one) is refused before anything
    runs, and the remedy is another path, never removing the system's device."""
    pytester.makepyfile(NO_DB)
    result = pytester.runpytest(f"--atlas-report={device}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--atlas-report*{device} *", "*how to fix: give the path of a regular file*"])
    result.stderr.no_fnmatch_line("*remove it*")
    result.stderr.no_fnmatch_line("*rm /dev*")
    assert Path(device).exists()


@pytest.mark.parametrize("option", OPTIONS)
def test_a_link_at_a_report_path_is_refused_before_anything_runs(
    pytester: pytest.Pytester, victim: Path, option: str
) -> None:
    pytester.makepyfile(NO_DB)
    link = pytester.path / "report.out"
    link.symlink_to(victim)
    result = pytester.runpytest(f"{option}={link}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}*{link} is a symbolic link (to {victim})*never writes through links*"])
    assert victim.read_text() == "precious\n" and link.is_symlink()
    result.stdout.no_fnmatch_line("*passed*")


def test_a_link_planted_while_the_run_runs_is_not_followed(pytester: pytest.Pytester, victim: Path) -> None:
    report = pytester.path / "out" / "report.json"
    pytester.makepyfile(
        f"import os\n\ndef test_plants_a_link():\n    os.mkdir({str(report.parent)!r})\n"
        f"    os.symlink({str(victim)!r}, {str(report)!r})\n"
    )
    result = pytester.runpytest(f"--atlas-report={report}")
    assert victim.read_text() == "precious\n" and report.is_symlink()
    result.stdout.fnmatch_lines(
        ["*pytest-atlas: --atlas-report not written: *report.json is a symbolic link*never writes through links*"]
    )
    assert result.ret != 0
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_a_report_in_a_new_folder_is_written_and_replaced_whole(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NO_DB)
    report = pytester.path / "reports" / "nested" / "report.json"
    for _ in range(2):  # the second run replaces the first run's file
        result = pytester.runpytest(f"--atlas-report={report}")
        assert result.ret == 0
        assert json.loads(report.read_text())["format"] == "pytest-atlas-report"
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.json"]  # no temporary file left


def test_a_report_path_in_a_folder_others_may_write_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NO_DB)
    shared = pytester.path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    result = pytester.runpytest(f"--atlas-report={shared / 'report.json'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--atlas-report*shared is writable by other users and not sticky*"])
    assert not (shared / "report.json").exists()


def test_a_report_path_that_cannot_be_written_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NO_DB)
    (pytester.path / "afile").write_text("")
    result = pytester.runpytest(f"--atlas-report={pytester.path / 'afile' / 'report.json'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--atlas-report*afile is a file*", "*how to fix: name a file in a folder*"])
    result.stderr.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("where", ["/proc/atlas.out", "/proc/atlas/new/atlas.out", "/sys/atlas.out"])
def test_a_report_path_where_nothing_can_be_stored_is_refused_before_anything_runs(
    pytester: pytest.Pytester, option: str, where: str
) -> None:
    pytester.makepyfile(NO_DB)
    result = pytester.runpytest(f"{option}={where}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    kind, top = ("sysfs", "/sys") if where.startswith("/sys") else ("proc", "/proc")
    result.stderr.fnmatch_lines(
        [
            f"*{option}: *{top} is on a {kind!r} file system, which is not a real one (nothing can be stored there)",
            "*how to fix: give a folder on a disk or a tmpfs and a path in it to the option",
        ]
    )
    result.stdout.no_fnmatch_line("*passed*")


@needs_root
def test_a_report_path_on_a_read_only_file_system_is_refused_before_anything_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NO_DB)
    with small_tmpfs(1, read_only=True) as frozen:
        result = pytester.runpytest(f"--atlas-report={frozen / 'reports' / 'report.json'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--atlas-report: {frozen / 'reports'} cannot be made: {frozen} is not writable: it is on a read-only file system"
        ]
    )
    result.stdout.no_fnmatch_line("*passed*")


@needs_root
def test_a_report_on_a_full_disk_says_so_and_is_not_claimed_written(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NO_DB)
    with small_tmpfs(1) as full:
        filler = fill(full)
        report = full / "report.html"
        result = pytester.runpytest(f"--atlas-report-html={report}")
        left = sorted(path.name for path in full.iterdir())
    assert left == [filler.name]  # no report, no half-written draft
    result.stdout.fnmatch_lines(
        [
            f"*pytest-atlas: --atlas-report-html not written: no space left on {full} (0 KB free, needs ~* KB); "
            "how to fix: free space there, or give the option a path on a file system with room"
        ]
    )
    result.stdout.no_fnmatch_line("*atlas html report:*")
    result.stdout.no_fnmatch_line("*(None)*")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the test passed: the report asked for is missing


@needs_root
def test_a_json_report_on_a_full_disk_is_not_claimed_written(pytester: pytest.Pytester, scored_dsn: str) -> None:
    with small_tmpfs(1) as full:
        fill(full)
        report = full / "report.json"
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("GITHUB_STEP_SUMMARY", raising=False)
            pytester.makefile(".toml", pyproject=PASSING_GATE)
            result = pytester.runpytest("--atlas-gates", f"--atlas-target={scored_dsn}", f"--atlas-report={report}")
        assert not report.exists()
    result.stdout.fnmatch_lines([f"*pytest-atlas: --atlas-report not written: no space left on {full} (0 KB free*"])
    result.stdout.no_fnmatch_line("*atlas report:*")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_folder_or_a_path_below_a_file_is_refused_by_the_one_check(tmp_path: Path) -> None:
    """The check the plugin runs on the options before anything runs is the one writing runs: the
    library call gives the same refusals (a folder, a path below a file) with their remedies."""
    from pytest_atlas.db import UnsafePathError, check_output, write_output

    (tmp_path / "afile").write_text("")
    for call in (check_output, lambda path: write_output(path, b"{}")):
        with pytest.raises(UnsafePathError, match="is a directory") as refused:
            call(tmp_path)
        assert refused.value.hint == f"name a file in it, e.g. {tmp_path / 'atlas.json'}"
        with pytest.raises(UnsafePathError, match="afile is a file") as refused:
            call(tmp_path / "afile" / "report.json")
        assert refused.value.hint == "name a file in a folder"
    assert (tmp_path / "afile").read_text() == ""


@ROOT_ONLY
def test_a_report_file_of_another_account_is_refused(tmp_path: Path) -> None:
    from pytest_atlas.db import UnsafePathError, write_output

    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    planted = sticky / "report.json"
    planted.write_text("theirs\n")
    os.chown(planted, 65534, 65534)
    with pytest.raises(UnsafePathError, match=r"belongs to .*uid 65534"):
        write_output(planted, b"ours\n")
    assert planted.read_text() == "theirs\n"
    link = sticky / "link.json"
    link.symlink_to(tmp_path / "elsewhere")
    os.lchown(link, 65534, 65534)
    with pytest.raises(UnsafePathError, match="is a symbolic link"):
        write_output(link, b"ours\n")
    assert not (tmp_path / "elsewhere").exists()
    assert write_output(sticky / "new.json", b"ours\n").read_bytes() == b"ours\n"


@ROOT_ONLY
def test_a_folder_of_another_account_anywhere_on_the_way_is_refused(tmp_path: Path) -> None:
    """Not only the folder the file goes in: any folder above it that another account owns lets
    that account rename what is below away and put a link in its place (to /etc, say)."""
    from pytest_atlas.db import UnsafePathError, check_output, write_output

    theirs = tmp_path / "theirs"
    mine = theirs / "mine"
    mine.mkdir(parents=True)
    os.chown(theirs, 65534, 65534)
    os.chmod(mine, 0o700)
    for path in (mine / "report.json", mine / "new" / "report.json"):
        with pytest.raises(UnsafePathError, match=r"theirs belongs to .*uid 65534.*, who could replace mine in it"):
            check_output(path)
        with pytest.raises(UnsafePathError, match="who could replace mine in it"):
            write_output(path, b"ours\n")
    assert list(mine.iterdir()) == []


# -- $GITHUB_STEP_SUMMARY: appended to, never through a link ----------------------------------------

PASSING_GATE = '[tool.pytest-atlas.gates.floor]\nkind = "threshold"\nthreshold = 0.5\n'


def _gated_run(pytester: pytest.Pytester, dsn: str, summary: Path) -> pytest.RunResult:
    pytester.makefile(".toml", pyproject=PASSING_GATE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        return pytester.runpytest("--atlas-gates", f"--atlas-target={dsn}", "-p", "no:randomly")


@pytest.fixture
def scored_dsn(atlas_db: Any, atlas_dsn: str) -> str:
    from tests.gates.gates_seed import insert, session_row

    insert(atlas_db, [session_row(0.9 + i / 1000, minute=i) for i in range(30)])
    atlas_db.commit()
    return atlas_dsn


def test_the_step_summary_is_appended_to(pytester: pytest.Pytester, scored_dsn: str) -> None:
    summary = pytester.path / "summary.md"
    summary.write_text("earlier step\n")
    for _ in range(2):
        assert _gated_run(pytester, scored_dsn, summary).ret == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n### pytest-atlas") and text.count("### pytest-atlas") == 2


def test_the_step_summary_is_not_written_through_a_link(
    pytester: pytest.Pytester, scored_dsn: str, victim: Path
) -> None:
    summary = pytester.path / "summary.md"
    summary.symlink_to(victim)
    result = _gated_run(pytester, scored_dsn, summary)
    assert victim.read_text() == "precious\n" and summary.is_symlink()
    result.stdout.fnmatch_lines(
        ["*pytest-atlas: $GITHUB_STEP_SUMMARY not written: *summary.md is a symbolic link*never writes through links*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the gate passed: the summary asked for is missing
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_the_step_summary_is_not_written_into_a_file_with_another_name(
    pytester: pytest.Pytester, scored_dsn: str, victim: Path
) -> None:
    summary = pytester.path / "summary.md"
    os.link(victim, summary)  # a hard link: writing it writes the victim
    result = _gated_run(pytester, scored_dsn, summary)
    assert victim.read_text() == "precious\n"
    result.stdout.fnmatch_lines(["*pytest-atlas: $GITHUB_STEP_SUMMARY not written: *summary.md has 2 names*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_step_summary_that_is_a_fifo_does_not_hang_the_run(pytester: pytest.Pytester, scored_dsn: str) -> None:
    summary = pytester.path / "summary.md"
    os.mkfifo(summary)  # nobody reads it: opening it to write would wait for ever
    result = _gated_run(pytester, scored_dsn, summary)
    result.stdout.fnmatch_lines(
        [
            "*pytest-atlas: $GITHUB_STEP_SUMMARY not written: *summary.md is not a regular file*give the path of a regular file*"
        ]
    )
    result.stdout.no_fnmatch_line("*remove it*")  # a pipe someone reads from is nobody's to remove
    assert result.ret == pytest.ExitCode.USAGE_ERROR
