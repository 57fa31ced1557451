"""The charts: --atlas-report-html drawn in a real browser (headless Chromium), and the same charts
as Mermaid blocks in $GITHUB_STEP_SUMMARY, from a run of reward and fields gates as users run it.

Chromium is part of the test environment (.ci/run installs Debian's ``chromium``): without it these
tests fail, saying so, rather than skip, because a skipped browser test proves nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from pytest_atlas.factories import Factory, insert_graphs
from pytest_atlas.reporting import fields_svg, mermaid_charts, render_html, reward_svg
from pytest_atlas.stats import compare, compare_shares  # noqa: F401  (numpy and scipy once per process, outside pytester's snapshots)

from ..contracts.test_plugin import check_counts

Conn = psycopg.Connection[Any]

GATES = """
[tool.pytest-atlas.gates.reward-floor]
kind = "threshold"
threshold = 0.75
metadata = { run = "candidate" }

[tool.pytest-atlas.gates.no-regression]
kind = "regression"
metadata = { run = "candidate" }
baseline = { metadata = { run = "main" } }
min_effect = 0.1
allow_inconclusive = true

[tool.pytest-atlas.gates.metadata-fields]
kind = "fields"
metadata = { run = "candidate" }
baseline = { metadata = { run = "main" } }
"""


def seed(conn: Conn) -> None:
    """The main run, and a candidate harness that stopped writing adaptive_summary and scores lower."""
    factory = Factory(1, learning_keys=2)
    main = factory.sessions(120, metadata={"run": "main"}, score=(0.75, 0.95), approved=True)
    cand = factory.sessions(120, metadata={"run": "candidate"}, score=(0.55, 0.85), approved=True)
    for graph in cand:
        graph.session["metadata"].pop("adaptive_summary", None)
    insert_graphs(conn, main + cand)
    conn.commit()


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.fail(
            "headless Chromium is needed to check the HTML report in a real browser and is not installed: "
            "apt-get install -y chromium (.ci/run installs it)"
        )
    return found


def browse(html: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={html.parent / 'chromium-profile'}",
            *args,
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_png(path: Path) -> np.ndarray[Any, Any]:
    """The pixels of an 8-bit, non-interlaced RGB(A) PNG as an (h, w, channels) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.int32)
    previous = np.zeros(stride, dtype=np.int32)
    for row in range(height):
        kind = raw[row * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=row * (stride + 1) + 1).astype(np.int32)
        if kind == 0:
            current = line
        elif kind == 2:
            current = (line + previous) % 256
        else:  # sub, average, paeth depend on the pixel to the left: decoded pixel by pixel
            current = np.zeros(stride, dtype=np.int32)
            for i in range(stride):
                left = current[i - channels] if i >= channels else 0
                up = previous[i]
                if kind == 1:
                    current[i] = (line[i] + left) % 256
                elif kind == 3:
                    current[i] = (line[i] + (left + up) // 2) % 256
                else:
                    corner = previous[i - channels] if i >= channels else 0
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                    current[i] = (line[i] + pred) % 256
        out[row] = current
        previous = current
    return out.reshape(height, width, channels)[:, :, :3]


#: measures, in the browser, what each chart really drew: its box and its visible marks
MEASURE = """
<script>
window.addEventListener('load', () => {
  const out = [...document.querySelectorAll('figure.atlas-chart')].map(f => {
    const box = f.querySelector('svg').getBoundingClientRect();
    const drawn = {};
    for (const e of f.querySelectorAll('circle.point, rect.bar, line.threshold, rect.band')) {
      const r = e.getBoundingClientRect();
      if (r.width > 0 && (r.height > 0 || e.tagName === 'line')) {
        const name = e.getAttribute('class'); drawn[name] = (drawn[name] || 0) + 1;
      }
    }
    return {kind: f.dataset.chart, gate: f.closest('section').dataset.gate, width: box.width, height: box.height,
            drawn: drawn};
  });
  const pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


@pytest.fixture
def gate_run(pytester: pytest.Pytester, atlas_db: Conn, atlas_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    seed(atlas_db)
    pytester.makefile(".toml", pyproject=GATES)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    html, report = pytester.path / "report.html", pytester.path / "report.json"
    result = pytester.runpytest(
        "--atlas-gates",
        f"--atlas-target={atlas_dsn}",
        f"--atlas-report-html={html}",
        f"--atlas-report={report}",
        "-p",
        "no:randomly",
    )
    return result, html, summary, json.loads(report.read_text())["results"]["gate"]


def test_the_html_report_is_drawn_in_a_real_browser(gate_run: Any, tmp_path: Path) -> None:
    result, html, _, gates = gate_run
    assert check_counts(result, "gates") == {"failed": 3}
    assert result.ret == 1
    text = html.read_text()
    # one self-contained file: no script, no stylesheet or image from anywhere, no URL but SVG's namespace
    assert "<script" not in text and "<link" not in text and " src=" not in text
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    expected = sum(len(g["chart"].get("rewards", {})) for g in gates) + sum(g["gate_kind"] == "fields" for g in gates)
    assert expected == 2 * 2 + 1  # two learning keys per reward gate, one fields chart

    shot = tmp_path / "report.png"
    done = browse(html, f"--screenshot={shot}", "--window-size=1280,3000")
    assert shot.exists(), done.stderr[-2000:]
    pixels = read_png(shot)
    assert pixels.shape[0] == 3000 and pixels.shape[1] == 1280
    assert float(pixels.std()) > 20, "the screenshot is blank"
    flat = pixels.reshape(-1, 3)

    def share(colour: tuple[int, int, int]) -> float:
        return float(np.mean(np.all(np.abs(flat - np.array(colour)) <= 40, axis=1)))

    assert share((0x15, 0x65, 0xC0)) > 0.0005  # reward points (blue)
    assert share((0xC6, 0x28, 0x28)) > 0.0002  # a failing path's bar and the thresholds (red)
    assert share((0x9E, 0x9E, 0x9E)) > 0.0005  # baseline shares (grey)

    measured_page = tmp_path / "measured.html"
    measured_page.write_text(
        text.replace("</body>", MEASURE + "</body>").replace("default-src 'none'", "default-src 'unsafe-inline'")
    )
    dom = browse(measured_page, "--dump-dom", "--virtual-time-budget=5000").stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    charts = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert len(charts) == expected
    wanted = []  # what each chart must have drawn, from the results (gates by name; keys, then fields)
    for gate in sorted(gates, key=lambda g: g["name"]):
        for _key, chart in sorted(gate["chart"].get("rewards", {}).items()):
            marks = {"point": len(chart["points"]), "threshold": 1}
            if chart["band"] is not None:
                marks["band"] = 1
            wanted.append(("rewards", gate["name"], marks))
        if gate["gate_kind"] == "fields":
            wanted.append(("fields", gate["name"], {"bar baseline": 30, "bar candidate": 30}))
    assert [(c["kind"], c["gate"], c["drawn"]) for c in charts] == wanted
    assert sum(marks.get("band", 0) for _, _, marks in wanted) == 2  # the regression gate's two keys
    for chart in charts:
        assert chart["width"] >= 600 and chart["height"] >= 200, chart


def test_the_step_summary_has_the_same_charts_as_mermaid_blocks(gate_run: Any) -> None:
    _, _, summary, _ = gate_run
    text = summary.read_text()
    blocks = re.findall(r"```mermaid\n(.*?)```", text, re.S)
    assert len(blocks) == 5
    assert all(block.startswith("xychart-beta\n") for block in blocks)
    fields = [b for b in blocks if "field presence" in b]
    assert len(fields) == 1 and fields[0].count("    bar [") == 2 and '"$.adaptive_summary"' in fields[0]
    rewards = [b for b in blocks if "field presence" not in b]
    assert all('y-axis "reward"' in b and b.count("    line [") >= 2 for b in rewards)
    assert "| metadata-fields | \\$.adaptive\\_summary |" in text  # Markdown punctuation escaped


def test_text_from_the_database_cannot_break_out_of_the_charts() -> None:
    hostile = '</title><script>alert(1)</script>"\x1b[2J'
    svg = reward_svg(hostile, {"points": [["2025-06-01T00:00:00+00:00", 0.5, 1]], "band": None, "threshold": 0.7})
    assert "<script>" not in svg and "\x1b" not in svg and "&lt;/title&gt;" in svg
    rows = [{"learning_key": hostile, "outcome": "fail", "detail": {"baseline_share": 1.0, "candidate_share": 0.0}}]
    assert "<script>" not in fields_svg("t", rows)
    page = render_html([{"name": hostile, "gate_kind": "fields", "outcome": "fail", "rows": rows}])
    assert "<script>" not in page
    mermaid = "\n".join(mermaid_charts([{"name": hostile, "gate_kind": "fields", "rows": rows}]))
    assert "<script>" not in mermaid and '"</' not in mermaid and "\x1b" not in mermaid
