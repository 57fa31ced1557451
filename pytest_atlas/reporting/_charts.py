"""Charts of gate results: inline SVG, one self-contained HTML report, and Mermaid ``xychart-beta``.

Rendering only, from result payloads (``GateResult.to_dict()``): nothing here evaluates a gate or
touches a database. Every text that came from the database (learning keys, paths, reasons) is
escaped for the format it lands in. The HTML loads nothing: no script, no font, no stylesheet from
the network; its charts are SVG drawn here.

Two charts:

* **rewards** (threshold and regression gates), per learning key: the scores of the window over
  time (dots), the baseline band (the baseline mean +/- one standard deviation), the threshold
  (dashed; for a regression gate the baseline mean minus the tolerance) and the window's mean;
* **fields** (fields gates): per path, the baseline share and the candidate share side by side,
  the candidate bar coloured by the row's outcome. Paths that did not pass come first.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pytest_atlas._table import escape, markdown_cell, markdown_code

__all__ = ["fields_svg", "mermaid_charts", "render_html", "reward_svg"]

_COLOURS = {
    "pass": "#2e7d32",
    "fail": "#c62828",
    "inconclusive": "#ef8f00",
    "error": "#6a1b9a",
    "not-run": "#6a1b9a",
    "deselected": "#616161",
}
_WIDTH, _HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 16, 28, 44
#: at most this many paths are drawn per fields chart (and shown per Mermaid block)
MAX_PATHS = 30
_MERMAID_POINTS = 60


def _text(value: object) -> str:
    """Text for HTML/SVG: control characters made visible (as the terminal shows them), then escaped."""
    return html.escape(escape(str(value)), quote=True)


def _time(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return math.nan


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


# ------------------------------------------------------------------------------------------------
# SVG
# ------------------------------------------------------------------------------------------------


def reward_svg(title: str, chart: Mapping[str, Any]) -> str:
    """One learning key's reward chart (``chart`` as in ``GateResult.chart["rewards"][key]``)."""
    points = [
        (_time(str(p[0])), float(p[1]), int(p[2]))
        for p in chart.get("points", [])
        if isinstance(p, list | tuple) and len(p) == 3 and _number(p[1]) is not None
    ]
    points = [p for p in points if math.isfinite(p[0])]
    band = chart.get("band")
    threshold = _number(chart.get("threshold"))
    mean = _number(chart.get("mean"))
    values = [score for _, score, _ in points] + [v for v in (threshold, mean) if v is not None]
    if isinstance(band, list | tuple) and len(band) == 2 and all(_number(v) is not None for v in band):
        low_band, high_band = float(band[0]), float(band[1])
        values += [low_band, high_band]
    else:
        band = None
    low = min([0.0, *values])
    high = max([1.0, *values])
    inner_w, inner_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    start = min((t for t, _, _ in points), default=0.0)
    stop = max((t for t, _, _ in points), default=1.0)
    span = stop - start or 1.0

    def x(t: float) -> float:
        return _LEFT + (t - start) / span * inner_w if len(points) > 1 else _LEFT + inner_w / 2

    def y(v: float) -> float:
        return _TOP + (high - min(max(v, low), high)) / (high - low) * inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart rewards" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="{_WIDTH}" height="{_HEIGHT}" role="img" aria-label="{_text(title)}">',
        f"<title>{_text(title)}</title>",
        f'<rect x="0" y="0" width="{_WIDTH}" height="{_HEIGHT}" fill="#ffffff"/>',
        f'<text x="{_LEFT}" y="18" class="title">{_text(title)}</text>',
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#e0e0e0"/>'
            f'<text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="tick">{tick:g}</text>'
        )
    if band is not None:
        top, bottom = y(high_band), y(low_band)
        parts.append(
            f'<rect class="band" x="{_LEFT}" y="{top:.1f}" width="{inner_w}" height="{max(bottom - top, 1.0):.1f}" '
            'fill="#1565c0" fill-opacity="0.15"><title>baseline mean +/- 1 sd</title></rect>'
        )
    if threshold is not None:
        parts.append(
            f'<line class="threshold" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(threshold):.1f}" '
            f'y2="{y(threshold):.1f}" stroke="#c62828" stroke-width="2" stroke-dasharray="6 4">'
            f"<title>threshold {threshold:.3f}</title></line>"
        )
    if mean is not None:
        parts.append(
            f'<line class="mean" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(mean):.1f}" y2="{y(mean):.1f}" '
            f'stroke="#2e7d32" stroke-width="1.5"><title>window mean {mean:.3f}</title></line>'
        )
    for t, score, session in points:
        parts.append(
            f'<circle class="point" cx="{x(t):.1f}" cy="{y(score):.1f}" r="3" fill="#1565c0">'
            f"<title>#{session}: {score:.3f}</title></circle>"
        )
    if points:
        first = datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%d %H:%M")
        last = datetime.fromtimestamp(stop, timezone.utc).strftime("%Y-%m-%d %H:%M")
        parts.append(f'<text x="{_LEFT}" y="{_HEIGHT - 26}" class="tick">{first}</text>')
        parts.append(f'<text x="{_WIDTH - _RIGHT}" y="{_HEIGHT - 26}" text-anchor="end" class="tick">{last}</text>')
    legend = f"{len(points)} scored sessions; band: baseline mean +/- 1 sd; dashed: threshold; green: window mean"
    parts.append(f'<text x="{_LEFT}" y="{_HEIGHT - 8}" class="tick">{legend}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _field_rows(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, float, float, str]]:
    """(path, baseline share, candidate share, outcome): paths that did not pass first, then the most
    common ones; at most :data:`MAX_PATHS`."""
    found = []
    for row in rows:
        detail = row.get("detail") or {}
        base, cand = _number(detail.get("baseline_share")), _number(detail.get("candidate_share"))
        if base is None or cand is None:
            continue
        found.append((str(row.get("learning_key")), base, cand, str(row.get("outcome"))))
    found.sort(key=lambda r: (r[3] == "pass", -r[1], r[0]))
    return found[:MAX_PATHS]


def fields_svg(title: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """A fields gate's shares: per path the baseline (grey) and candidate (by outcome) bars."""
    shown = _field_rows(rows)
    label_w, bar_w, line_h = 330, _WIDTH - 330 - 100, 26
    height = _TOP + 16 + line_h * max(len(shown), 1) + 24
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart fields" viewBox="0 0 {_WIDTH} {height}" '
        f'width="{_WIDTH}" height="{height}" role="img" aria-label="{_text(title)}">',
        f"<title>{_text(title)}</title>",
        f'<rect x="0" y="0" width="{_WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="18" class="title">{_text(title)}</text>',
        f'<text x="{label_w}" y="{_TOP + 8}" class="tick">0%</text>'
        f'<text x="{label_w + bar_w}" y="{_TOP + 8}" text-anchor="end" class="tick">100%</text>',
    ]
    for index, (path, base, cand, outcome) in enumerate(shown):
        top = _TOP + 16 + index * line_h
        short = path if len(path) <= 44 else "…" + path[-43:]
        colour = _COLOURS.get(outcome, "#616161")
        parts.append(
            f'<text x="{label_w - 8}" y="{top + 15}" text-anchor="end" class="label">{_text(short)}</text>'
            f'<rect class="bar baseline" x="{label_w}" y="{top + 2}" width="{max(base * bar_w, 1.0):.1f}" height="9" '
            f'fill="#9e9e9e"><title>{_text(path)}: baseline {base:.1%}</title></rect>'
            f'<rect class="bar candidate" x="{label_w}" y="{top + 12}" width="{max(cand * bar_w, 3.0):.1f}" '
            f'height="9" fill="{colour}"><title>{_text(path)}: candidate {cand:.1%} ({_text(outcome)})</title></rect>'
            f'<text x="{label_w + bar_w + 6}" y="{top + 15}" class="tick">{base:.0%} → {cand:.0%}</text>'
        )
    if not shown:
        parts.append(f'<text x="8" y="{_TOP + 30}" class="label">no path compared</text>')
    parts.append(
        f'<text x="8" y="{height - 8}" class="tick">grey: baseline share; coloured: candidate share '
        f"(red fail, amber inconclusive, green pass); {len(shown)} of {len(rows)} paths shown</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _charts(payload: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, svg) of every chart of one gate payload."""
    name = str(payload.get("name"))
    out = []
    rewards = (payload.get("chart") or {}).get("rewards") or {}
    for key, chart in sorted(rewards.items()):
        if isinstance(chart, Mapping):
            shown = key if len(key) <= 24 else key[:20] + "…"
            out.append(("rewards", reward_svg(f"{name} · learning key {shown or '(no key)'}", chart)))
    if payload.get("gate_kind") == "fields" and payload.get("rows"):
        out.append(("fields", fields_svg(f"{name} · field presence", payload["rows"])))
    return out


# ------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #212121; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 6px; }
.meta { color: #616161; margin-bottom: 12px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
td, th { border: 1px solid #e0e0e0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
figure { margin: 8px 0 16px; } svg { max-width: 100%; height: auto; border: 1px solid #eeeeee; }
svg .title { font-size: 13px; font-weight: 600; fill: #212121; } svg .tick { font-size: 11px; fill: #616161; }
svg .label { font-size: 11px; fill: #212121; font-family: ui-monospace, monospace; }
"""


def _badge(outcome: str) -> str:
    return f'<span class="badge" style="background:{_COLOURS.get(outcome, "#616161")}">{_text(outcome.upper())}</span>'


def _row_table(payload: Mapping[str, Any], limit: int = 40) -> str:
    rows = [r for r in payload.get("rows", []) if isinstance(r, Mapping)]
    fields = payload.get("gate_kind") == "fields"
    # a fields gate has a row per path (hundreds): the ones that did not pass, and a count of the rest
    shown = [r for r in rows if r.get("outcome") != "pass"] if fields else rows
    passed = len(rows) - len(shown)
    head = "path" if fields else "learning key"
    lines = [
        f"<table><tr><th>{head}</th><th>n</th><th>value</th><th>bound</th><th>threshold</th><th>outcome</th>"
        "<th>worst sessions</th><th>reason</th></tr>"
    ]
    for row in shown[:limit]:
        value = _number(row.get("value"))
        worst = ", ".join(f"#{int(s)}" for s in row.get("worst_sessions", []) if isinstance(s, int))
        lines.append(
            "<tr>"
            f"<td>{_text(row.get('learning_key') or '(no key)')}</td><td>{_text(row.get('n'))}</td>"
            f"<td>{_text(row.get('statistic'))} {'' if value is None else f'{value:.3f}'}</td>"
            f"<td>{_text(row.get('bound'))}</td><td>{_text(row.get('threshold'))}</td>"
            f"<td>{_badge(str(row.get('outcome')))}</td><td>{_text(worst or '-')}</td>"
            f"<td>{_text(row.get('reason'))}</td></tr>"
        )
    lines.append("</table>")
    hidden = max(len(shown) - limit, 0)
    if hidden or passed:
        parts = [f"{hidden} more row(s) that did not pass"] if hidden else []
        parts += [f"{passed} path(s) that passed"] if passed else []
        lines.append(f'<p class="meta">Not listed: {" and ".join(parts)}; the JSON report has every row.</p>')
    return "".join(lines)


def render_html(
    payloads: Sequence[Mapping[str, Any]], *, target: str | None = None, title: str = "pytest-atlas"
) -> str:
    """The whole report as one self-contained HTML document (no network): per gate its outcome, its
    rows and its charts."""
    ordered = sorted(payloads, key=lambda p: str(p.get("name")))
    counts: dict[str, int] = {}
    for payload in ordered:
        counts[str(payload.get("outcome"))] = counts.get(str(payload.get("outcome")), 0) + 1
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(counts.items())) or "no gates"
    body = [
        f"<h1>{_text(title)}: gates</h1>",
        f'<div class="meta">{len(ordered)} gate(s): {_text(summary)}'
        + (f"; database {_text(target)}" if target else "")
        + "</div>",
    ]
    for payload in ordered:
        outcome = str(payload.get("outcome"))
        body.append(
            f'<section class="gate" data-gate="{_text(payload.get("name"))}">'
            f"<h2>{_text(payload.get('name'))} ({_text(payload.get('gate_kind'))}) {_badge(outcome)}</h2>"
            f'<div class="meta">{_text(payload.get("summary", ""))}</div>'
        )
        if payload.get("error"):
            body.append(f"<pre>{_text(payload['error'])}</pre>")
        elif payload.get("message"):
            body.append(f'<div class="meta">{_text(payload["message"])}</div>')
        for kind, svg in _charts(payload):
            body.append(f'<figure class="atlas-chart" data-chart="{kind}">{svg}</figure>')
        body.append(_row_table(payload))
        body.append("</section>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{_text(title)} report</title><style>{_STYLE}</style></head><body>" + "".join(body) + "</body></html>\n"
    )


# ------------------------------------------------------------------------------------------------
# Mermaid (GitHub renders ```mermaid blocks in $GITHUB_STEP_SUMMARY)
# ------------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9 _.*$\[\]:/+()-]")


def _label(text: str, limit: int = 40) -> str:
    """A label Mermaid parses: quotes, brackets of HTML, newlines and control characters removed."""
    clean = _UNSAFE.sub("?", escape(text))
    return clean if len(clean) <= limit else "…" + clean[-(limit - 1) :]


def _reward_mermaid(title: str, chart: Mapping[str, Any]) -> list[str] | None:
    scores = [float(p[1]) for p in chart.get("points", []) if isinstance(p, list | tuple) and _number(p[1]) is not None]
    if not scores:
        return None
    step = max(1, math.ceil(len(scores) / _MERMAID_POINTS))
    shown = [scores[i] for i in range(0, len(scores), step)]
    low = min([0.0, *shown])
    high = max([1.0, *shown])
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "{_label(title, 60)}"',
        f'    x-axis "scored sessions, oldest to newest" 1 --> {len(shown)}',
        f'    y-axis "reward" {low:.2f} --> {high:.2f}',
        "    line [" + ", ".join(f"{v:.3f}" for v in shown) + "]",
    ]
    threshold = _number(chart.get("threshold"))
    if threshold is not None:
        lines.append("    line [" + ", ".join(f"{threshold:.3f}" for _ in shown) + "]")
    band = chart.get("band")
    if isinstance(band, list | tuple) and len(band) == 2 and all(_number(v) is not None for v in band):
        for edge in band:
            lines.append("    line [" + ", ".join(f"{float(edge):.3f}" for _ in shown) + "]")
    lines.append("```")
    return lines


def _fields_mermaid(title: str, rows: Sequence[Mapping[str, Any]]) -> list[str] | None:
    shown = _field_rows(rows)[:12]
    if not shown:
        return None
    return [
        "```mermaid",
        "xychart-beta",
        f'    title "{_label(title, 60)}"',
        "    x-axis [" + ", ".join(f'"{_label(path, 28)}"' for path, _, _, _ in shown) + "]",
        '    y-axis "share of sessions (%)" 0 --> 100',
        "    bar [" + ", ".join(f"{base * 100:.1f}" for _, base, _, _ in shown) + "]",
        "    bar [" + ", ".join(f"{cand * 100:.1f}" for _, _, cand, _ in shown) + "]",
        "```",
    ]


def mermaid_charts(payloads: Sequence[Mapping[str, Any]]) -> list[str]:
    """Markdown lines: one ``xychart-beta`` block per chart of the HTML report, each with a caption."""
    out: list[str] = []
    for payload in sorted(payloads, key=lambda p: str(p.get("name"))):
        name = str(payload.get("name"))
        rewards = (payload.get("chart") or {}).get("rewards") or {}
        for key, chart in sorted(rewards.items()):
            block = _reward_mermaid(f"{name} - {key or '(no key)'}", chart) if isinstance(chart, Mapping) else None
            if block:
                captions = "scores (first line), threshold (second)" + (
                    ", baseline band (last two)" if chart.get("band") else ""
                )
                caption = f"*{markdown_cell(_label(name))} · `{markdown_code(_label(key or '(no key)'))}`*"
                out += [f"{caption}: {captions}", "", *block, ""]
        if payload.get("gate_kind") == "fields":
            block = _fields_mermaid(f"{name} - field presence", payload.get("rows", []))
            if block:
                out += [
                    f"*{markdown_cell(_label(name))}*: share of sessions per path, baseline (first bar) and "
                    "candidate (second)",
                    "",
                    *block,
                    "",
                ]
    return out
