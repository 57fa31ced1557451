"""Validation speed on realistic ``sessions.metadata`` documents: pytest-atlas vs python-jsonschema.

Builds a corpus of varied session-metadata documents shaped like what Atlas writes on its success
path (paired/auto/coach runs, 3 or 4 reward-audit entries, drift with and without alert, learning
state with playbook entries, caller keys), about 1 in 10 carrying a tolerated quirk (a Python
str(datetime) timestamp, tags as a string, the {average, count} reward summary) and 1 in 20 an
error (a score stored as a string). Then it times, per document:

* ``jsonschema.validate(doc, schema, registry=...)``: the baseline named in the issue, which
  builds and checks a validator on every call (python-jsonschema 4.x);
* a python-jsonschema validator built once, with a FormatChecker (a fairer baseline);
* ``pytest_atlas.is_valid(doc, "session-metadata")``: the verdict only;
* ``pytest_atlas.check_payload(doc, "session-metadata", census=False)``: errors and warnings,
  which is what ``validate`` and ``iter_errors`` compute;
* ``pytest_atlas.check_payload(doc, "session-metadata")``: plus the unknown-fields census
  (what ``check_database`` does per row).

Times are CPU time of this process (``time.process_time``: on a shared machine, time other
processes take is not counted). Each measurement is the median of ``--repeats`` interleaved rounds
(one pass of every row per round); ratios are against the first baseline and measured in the same
run. The last lines compare
``is_valid`` with jsonschema-rs alone on the same compiled validator and break its time down: the
engine, the storability check (``is_plain_json``: depth, Python types, NaN/Infinity, NUL and
surrogates, which no JSON Schema engine sees: the C walk of ``_plain.c``, or where it is not built
``orjson.dumps`` and a pass over the values by type; ``bench_storability.py`` times each) and the
rest (finding the compiled validator: ``PayloadValidator.is_valid`` is timed without it).

    python benchmarks/bench_validation.py
    python benchmarks/bench_validation.py --docs 500 --repeats 7
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import jsonschema
from referencing import Registry, Resource

import pytest_atlas
from pytest_atlas._table import render_table
from pytest_atlas.validation import validator_for
from pytest_atlas.validation._schemas import documents
from pytest_atlas.validation._storable import is_plain_json, is_plain_json_in_python, native_is_plain_json

PRINCIPLES = [
    {"name": "Correctness", "weight": 0.5, "description": "The answer resolves the task."},
    {"name": "Evidence", "weight": 0.3, "description": "Claims are backed by tool output."},
    {"name": "Concision", "weight": 0.2, "description": "No padding."},
]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _iso(rng: random.Random) -> str:
    return f"2025-11-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:05.118402+00:00"


def session_metadata(rng: random.Random) -> dict[str, Any]:
    mode = rng.choice(["paired", "paired", "auto", "coach"])
    samples: list[dict[str, Any]] = [
        {
            "score": round(rng.uniform(0.4, 1.0), 3),
            "rationale": "The fix is verified against the logs.",
            "principles": PRINCIPLES,
            "uncertainty": round(rng.uniform(0.05, 0.3), 3),
            "temperature": None,
        }
        for _ in range(rng.choice([1, 3, 3]))
    ]
    score = sum(s["score"] for s in samples) / len(samples)
    key = _hex(rng, 64)
    audit = [
        {
            "stage": "tier1",
            "model": "gemini/gemini-2.5-flash",
            "temperature": t,
            "messages": [
                {"role": "system", "content": "You are the Atlas session reward model. " * 20},
                {"role": "user", "content": "Task: investigate the incident.\nFinal answer: ..." * 5},
            ],
            "response": json.dumps({"score": score, "uncertainty": 0.1}),
            "reasoning": {},
            "raw_response": "ModelResponse(id='chatcmpl-" + _hex(rng, 8) + "', model='gemini-2.5-flash')",
        }
        for t in (0.2, 0.5, 0.8)
    ]
    alert = rng.random() < 0.1
    entries = [
        {
            "id": f"playbook-entry-{_hex(rng, 12)}",
            "audience": "student",
            "cue": {"type": "regex", "pattern": "latency|p99", "description": "Latency regressions"},
            "action": {
                "imperative": "Pull the p99 histogram first.",
                "runtime_handle": "metrics.query",
                "tool_name": "metrics.query",
                "arguments": {"window": "1h"},
            },
            "expected_effect": "Grounded fixes.",
            "scope": {
                "constraints": "Services with metrics.",
                "category": "differentiation",
                "applies_when": "A latency incident.",
            },
            "metadata": {"validation_status": "validated"},
            "provenance": {
                "created_at": _iso(rng),
                "updated_at": _iso(rng),
                "status": {"category": "differentiation", "lifecycle": "active"},
            },
            "impact": {
                "sessions_observed": rng.randint(1, 40),
                "total_cue_hits": rng.randint(0, 90),
                "reward_with_sum": 2.4,
                "reward_with_count": 3,
                "first_observed_at": _iso(rng),
                "last_observed_at": _iso(rng),
            },
        }
        for _ in range(rng.randint(0, 3))
    ]
    document: dict[str, Any] = {
        "source": "atlas run",
        "incident_id": f"INC-{rng.randint(1000, 9999)}",
        "tags": ["latency"],
        "learning_key": key,
        "review": {"require_approval": True, "default_export_statuses": ["approved"], "include_all_statuses": False},
        "drift": {
            "alert": alert,
            "drift_alert": alert,
            "reason": "score_z" if alert else None,
            "score_delta": 0.01,
            "score_z": 3.5 if alert else 0.2,
            "score_mad_z": None,
            "uncertainty_delta": 0.0,
            "uncertainty_z": None,
            "uncertainty_mad_z": None,
            "threshold": 3.0,
            "window": 50,
            "learning_key": key,
            "baseline": dict.fromkeys(
                [
                    "score_mean",
                    "score_median",
                    "score_stddev",
                    "uncertainty_mean",
                    "uncertainty_median",
                    "uncertainty_stddev",
                    "best_uncertainty_mean",
                    "best_uncertainty_median",
                    "best_uncertainty_stddev",
                ],
                0.1,
            )
            | {"window": 50, "sample_count": rng.randint(1, 50)},
        },
        "drift_alert": alert,
        "reward_audit": audit,
        "triage_dossier": {
            "task": "Investigate the incident.",
            "summary": "SRE investigation for checkout",
            "risks": [{"category": "availability", "description": "p99 over SLO", "severity": "high"}],
            "signals": [{"name": "p99_ms", "value": 2300, "confidence": 0.9, "annotation": None}],
            "persona_references": [],
            "embeddings": {},
            "tags": ["latency"],
            "metadata": {"learning_key": key, "source": "atlas run"},
            "fingerprint_hint": None,
        },
        "adaptive_summary": {
            "adaptive_mode": mode,
            "mode_history": [{"mode": mode, "confidence": 0.72}],
            "confidence": 0.72,
            "probe": {"mode": mode, "confidence": 0.72},
        },
        "execution_mode": mode,
        "session_reward": {
            "score": score,
            "rationale": None,
            "judges": [
                {
                    "identifier": "session_reward",
                    "score": score,
                    "rationale": samples[0]["rationale"],
                    "principles": PRINCIPLES,
                    "samples": samples,
                    "escalated": len(samples) == 1,
                    "escalation_reason": "tier1_variance_or_uncertainty" if len(samples) == 1 else None,
                }
            ],
            "raw": {
                "score": score,
                "samples": [{"score": s["score"], "uncertainty": s["uncertainty"]} for s in samples],
                "execution_mode": mode,
                "teacher_intervened": mode != "auto",
                "focus_prompt": None,
            },
        },
        "reward_stats": {
            "score": score,
            "score_mean": score,
            "score_stddev": 0.03,
            "sample_count": len(samples),
            "uncertainty_mean": 0.13,
            "uncertainty_stddev": 0.03,
            "best_uncertainty": 0.1,
            "timestamp": _iso(rng),
        },
        "token_usage": {
            "prompt_tokens": rng.randint(500, 5000),
            "completion_tokens": rng.randint(50, 900),
            "total_tokens": 3000,
            "calls": rng.randint(1, 6),
        },
        "student_learning": "Query the latency histogram before touching the cache.",
        "learning_state": {
            "student_learning": "Pull latency histograms first.",
            "teacher_learning": None,
            "metadata": {
                "playbook_version": "playbook_entry.v1",
                "playbook_entries": entries,
                "last_updated_at": _iso(rng),
            },
        },
        "reward_summary": {"score": score, "score_stddev": 0.03, "uncertainty_mean": 0.13},
        "learning_history": {"entries": [], "count": 0, "total_count": 0},
        "teacher_notes": ["Check the p99 histogram before changing the cache TTL."] if mode != "auto" else [],
    }
    if alert:
        document["drift"]["message"] = "Reward drift alert (score_z)"
        document["review_status"] = "pending"
        document["review_notes"] = "Reward drift alert (score_z)"
    roll = rng.random()
    if roll < 0.04:
        document["learning_state"]["updated_at"] = "2025-11-03 14:22:05.118402+00:00"  # quirk
    elif roll < 0.07:
        document["tags"] = "latency"  # quirk
    elif roll < 0.10:
        document["reward_summary"] = {"average": 0.0, "count": 1}  # quirk
    elif roll < 0.15:
        document["reward_stats"]["score"] = str(round(score, 3))  # error: a score as a string
    return document


def rate(docs: list[Any], work: Callable[[Any], Any], repeats: int) -> float:
    """Documents per second, median over ``repeats`` passes over ``docs``."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        for doc in docs:
            work(doc)
        times.append(time.process_time() - started)
    return len(docs) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300, help="corpus size (default 300)")
    parser.add_argument(
        "--baseline-docs",
        type=int,
        default=40,
        help="documents given to jsonschema.validate, which is slow (default 40)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20251125)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    corpus = [session_metadata(rng) for _ in range(args.docs)]
    sizes = sorted(len(json.dumps(doc)) for doc in corpus)
    verdicts = [pytest_atlas.check_payload(doc, "session-metadata") for doc in corpus]

    schemas = documents()
    registry = Registry().with_resources(
        [(schema["$id"], Resource.from_contents(dict(schema))) for schema in schemas.values()]
    )
    schema = dict(schemas["session-metadata"])
    prebuilt = jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )

    def baseline(doc: Any) -> None:
        with contextlib.suppress(jsonschema.ValidationError):
            jsonschema.validate(doc, schema, registry=registry)

    # warm-up: compile and cache everything once
    for doc in corpus[:5]:
        pytest_atlas.is_valid(doc, "session-metadata")
        prebuilt.is_valid(doc)

    slow = [copy.deepcopy(doc) for doc in corpus[: args.baseline_docs]]
    raw = validator_for("session-metadata")._lenient  # the compiled jsonschema-rs validator is_valid uses
    checker = "C, _plain.c" if is_plain_json is native_is_plain_json else "Python: the C one is not built"
    work: list[tuple[str, list[Any], Callable[[Any], Any]]] = [
        ("jsonschema.validate(doc, schema) per document", slow, baseline),
        ("python-jsonschema, validator built once (+FormatChecker)", corpus, prebuilt.is_valid),
        ("jsonschema-rs alone, the same compiled validator", corpus, raw.is_valid),
        ("pytest_atlas.is_valid  (verdict)", corpus, lambda d: pytest_atlas.is_valid(d, "session-metadata")),
        ("PayloadValidator.is_valid  (the validator found once)", corpus, validator_for("session-metadata").is_valid),
        (f"  of which: the storability check alone ({checker})", corpus, is_plain_json),
        ("  the Python check of pure installs (orjson + values)", corpus, is_plain_json_in_python),
        (
            "pytest_atlas.check_payload(census=False)  (= validate)",
            corpus,
            lambda d: pytest_atlas.check_payload(d, "session-metadata", census=False),
        ),
        (
            "pytest_atlas.check_payload  (+ unknown-fields census)",
            corpus,
            lambda d: pytest_atlas.check_payload(d, "session-metadata"),
        ),
    ]
    passes: dict[str, list[float]] = {name: [] for name, _, _ in work}
    for _ in range(args.repeats):  # interleaved: one pass of each per round
        for name, docs, run in work:
            passes[name].append(rate(docs, run, 1))
    measured = [(name, statistics.median(passes[name])) for name, _, _ in work]
    base = measured[0][1]
    print(
        f"corpus: {len(corpus)} session-metadata documents, {sizes[len(sizes) // 2]:,} bytes median "
        f"({sizes[0]:,}-{sizes[-1]:,}); {sum(not v.valid for v in verdicts)} with errors, "
        f"{sum(bool(v.warnings) and v.valid for v in verdicts)} valid with warnings; "
        f"median of {args.repeats} repeats"
    )
    rows = [("validator", "docs/s", "µs/doc", "× baseline")]
    rows += [(name, f"{value:,.0f}", f"{1e6 / value:,.1f}", f"{value / base:,.1f}") for name, value in measured]
    print(render_table(rows, right={1, 2, 3}))
    rates = dict(measured)
    verdict = rates["pytest_atlas.is_valid  (verdict)"]
    method = rates["PayloadValidator.is_valid  (the validator found once)"]
    engine = rates["jsonschema-rs alone, the same compiled validator"]
    walk = rates[f"  of which: the storability check alone ({checker})"]
    python = rates["  the Python check of pure installs (orjson + values)"]
    print(
        f"\nis_valid / jsonschema-rs alone: {verdict / engine:.2f} (PayloadValidator.is_valid: {method / engine:.2f}); "
        f"is_valid / python-jsonschema built once: "
        f"{verdict / rates['python-jsonschema, validator built once (+FormatChecker)']:.1f}"
    )
    print(
        f"is_valid {1e6 / verdict:.1f} µs per document, PayloadValidator.is_valid {1e6 / method:.1f} µs; measured "
        f"alone: jsonschema-rs {1e6 / engine:.1f} µs, the storability check {1e6 / walk:.1f} µs ({checker}; "
        f"the Python one {1e6 / python:.1f} µs)"
    )
    print(
        f"0.8x jsonschema-rs would leave {1e6 / engine / 0.8 - 1e6 / engine:.1f} µs per document for everything "
        "but the engine"
    )


if __name__ == "__main__":
    main()
