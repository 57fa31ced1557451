"""The run's secrets are scrubbed from reports, and nothing else: a password that is also a word
the plugin writes ("pass", "fail") leaves the results as they are, and a test's own text with a
URL and an "@" further on is shown as it was written."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from pytest_atlas.stats import compare  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from ..contracts.test_plugin import check_counts
from .test_gate_selections import Conn, gate, seed


def _with_password(dsn: str, password: str) -> str:
    # the test server logs in by peer: the password is never asked for, but the run knows it
    return re.sub(r"^postgresql://([^@/]+)@", rf"postgresql://\1:{password}@", dsn)


@pytest.mark.parametrize("password", ["pass", "fail"])
def test_a_password_that_is_an_outcome_word_leaves_the_results_alone(
    pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, password: str
) -> None:
    seed(atlas_db, "main")
    pytester.makefile(
        ".toml",
        pyproject=gate("floor", 'kind = "threshold"\nthreshold = 0.5')
        + gate("ceiling", 'kind = "threshold"\nthreshold = 0.99'),
    )
    target = _with_password(atlas_dsn, password)
    assert target != atlas_dsn and psycopg.connect(target).close() is None
    result = pytester.runpytest(
        "--atlas-gates", f"--atlas-target={target}", "--atlas-report=report.json", "-p", "no:randomly"
    )
    out = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in out and "INTERNALERROR" not in out, out
    assert result.ret == 1, out
    assert check_counts(result, "gates") == {"passed": 1, "failed": 1}, out
    report = json.loads((pytester.path / "report.json").read_text())
    assert {entry["name"]: entry["outcome"] for entry in report["results"]["gate"]} == {
        "floor": "pass",
        "ceiling": "fail",
    }
    assert report["summary"]["pass"] == 1 and report["summary"]["fail"] == 1
    assert f":{password}@" not in out  # the password itself is still never shown


def test_a_tests_own_text_with_a_url_and_an_at_sign_is_shown_as_written(pytester: pytest.Pytester) -> None:
    text = "service http://localhost:8080/api failed for user bob@corp.io"
    pytester.makepyfile(
        test_u=f"""
def test_u():
    print("git clone https://github.com/org/repo.git; email: ci@corp.io")
    assert False, {text!r}
"""
    )
    result = pytester.runpytest("-p", "no:randomly", "-rA", "--junitxml=j.xml")
    out = result.stdout.str()
    assert text in out, out
    assert "git clone https://github.com/org/repo.git; email: ci@corp.io" in out, out
    junit = (pytester.path / "j.xml").read_text()
    assert "bob@corp.io" in junit and "http://localhost:8080/api failed" in junit
