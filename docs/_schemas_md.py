"""Generate docs/schemas.md from jsonschemas/*.schema.json (run: python docs/_schemas_md.py).

tests/contracts/test_docs.py fails when docs/schemas.md is not what this script writes, so the
reference cannot drift from the schemas.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "jsonschemas"
TARGET = ROOT / "docs" / "schemas.md"

NAMES = [
    "session-metadata",
    "session-reward",
    "reward-stats",
    "reward-audit",
    "drift",
    "trajectory-event",
    "plan",
    "step-evaluation",
    "step-metadata",
    "discovery-payload",
    "discovery-metadata",
    "learning-registry-metadata",
    "export-trace",
]

INTRO = """\
# Payload schemas

pytest-atlas ships one JSON Schema (draft 2020-12) per JSON payload that Atlas writes to PostgreSQL,
in `jsonschemas/` (inside the wheel: `pytest_atlas/_data/jsonschemas/`). They were written from what
Atlas 0.1.15/0.1.16 really stores, quirks included. This page is generated from the schema files by
`docs/_schemas_md.py`; the files themselves are the reference.

```python
from pytest_atlas import SCHEMA_NAMES, iter_errors, load_schema, validate

row_metadata = load_schema("session-metadata")["examples"][0]  # in your code: a row's metadata
warnings = validate(row_metadata, "session-metadata")  # raises PayloadError on any error
for violation in iter_errors({{"score": "0.9"}}, "reward-stats"):
    print(violation.format())  # $.score: type: expected number, got string "0.9"
assert "reward-stats" in SCHEMA_NAMES
```

Each schema has an `$id` under `{base}`; your own schemas can `$ref` them
(`pytest_atlas.schema_uri("session-metadata")`). Shared definitions (scores, uncertainties,
timestamps, enums, reward structures) live in `common.schema.json` and are used through `$ref`.

**Open and closed objects.** Where Atlas merges caller-supplied keys (session metadata, step
metadata, playbook entries, event metadata …) extra keys are allowed, and
`check_payload(...).unknown_fields` and the database check's *unknown-fields census* list them.
Where Atlas's own models forbid extra keys (the event envelope, the triage dossier, drift, reward
breakdowns, plans, `review`, `token_usage`, `applied_*_learning`) an extra key is an error.

**Quirks are warnings.** Everything Atlas really writes validates. Where that means tolerating an
oddity, the subschema carries `x-atlas-quirk: <id>` and a description, and the
validator reports a *warning* (severity `warning`, keyword `x-atlas-quirk`) instead of an error.

| quirk | what it means |
|---|---|
{quirks}

**Checks outside JSON Schema** (errors, pseudo-keywords starting with `x-`): `x-nonfinite` (NaN or
±Infinity: jsonb rejects them), `x-nul` (`\\u0000`: jsonb rejects it), `x-surrogate` (a lone
surrogate such as `\\ud800`: not Unicode text, jsonb rejects it), `x-json-type` (a Python value JSON
has no type for), `x-depth` (nesting deeper than 512 levels), `x-parse` (a database
value that is not JSON).
"""


def load(name: str) -> dict[str, Any]:
    return json.loads((FOLDER / f"{name}.schema.json").read_text(encoding="utf-8"))


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def describe(node: Any, depth: int = 0) -> str:
    """A one-line type description of a subschema."""
    if node is True or node == {}:
        return "any"
    if node is False:
        return "never"
    if not isinstance(node, dict):
        return "?"
    if "$ref" in node:
        target = node["$ref"]
        file, _, pointer = target.partition("#")
        label = pointer.rsplit("/", 1)[-1] if pointer else file.removesuffix(".schema.json")
        return f"`{label}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in node["enum"])
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    parts = []
    types = node.get("type")
    if isinstance(types, list):
        parts.append(" or ".join(types))
    elif isinstance(types, str):
        if types == "array" and "items" in node and depth < 2:
            parts.append(f"array of {describe(node['items'], depth + 1)}")
        elif types == "object" and "patternProperties" in node and depth < 2:
            parts.append(f"map of {describe(next(iter(node['patternProperties'].values())), depth + 1)}")
        else:
            parts.append(types)
    if "anyOf" in node:
        choices = " or ".join(describe(sub, depth + 1) for sub in node["anyOf"])
        parts.append(choices if not parts else f"({choices})")
    if "allOf" in node and not parts:
        parts.append(" and ".join(describe(sub, depth + 1) for sub in node["allOf"]))
    for key, text in (("minimum", "≥"), ("maximum", "≤")):
        if key in node:
            parts.append(f"{text} {node[key]}")
    if "pattern" in node:
        parts.append(f"matching `{node['pattern']}`")
    if "format" in node:
        parts.append(f"format {node['format']}")
    return ", ".join(parts) or "any"


def keys_table(node: dict[str, Any]) -> list[str]:
    props = node.get("properties", {})
    required = set(node.get("required", []))
    lines = ["| key | type | required | notes |", "|---|---|---|---|"]
    for key, sub in props.items():
        notes = sub.get("description", "") if isinstance(sub, dict) else ""
        if isinstance(sub, dict) and isinstance(sub.get("properties"), dict) and sub.get("type") == "object":
            notes = (notes + " " if notes else "") + "Keys: " + ", ".join(f"`{k}`" for k in sub["properties"])
        lines.append(f"| `{key}` | {cell(describe(sub))} | {'yes' if key in required else ''} | {cell(notes)} |")
    extra = node.get("additionalProperties")
    lines.append("")
    lines.append(
        "Other keys: "
        + (
            "**not allowed**."
            if extra is False
            else "allowed (reported in the unknown-fields census)."
            if extra == {}
            else "allowed."
        )
    )
    return lines


def walk(node: Any) -> Any:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def quirks_of(schema: dict[str, Any], seen: set[str] | None = None) -> dict[str, str]:
    """x-atlas-quirk ids reachable from ``schema`` (following $ref into the other files)."""
    seen = seen if seen is not None else set()
    found: dict[str, str] = {}
    for node in walk(schema):
        if not isinstance(node, dict):
            continue
        if "x-atlas-quirk" in node:
            found[node["x-atlas-quirk"]] = node.get("description", "")
        ref = node.get("$ref")
        if isinstance(ref, str):
            file, _, pointer = ref.partition("#")
            key = (file or schema["$id"].rsplit("/", 1)[-1]) + "#" + pointer
            if key in seen:
                continue
            seen.add(key)
            target: Any = load(key.split("#")[0].removesuffix(".schema.json"))
            for part in [p for p in pointer.split("/") if p]:
                target = target[part]
            if file:
                target = (
                    {**target, "$id": schema["$id"].rsplit("/", 1)[0] + "/" + file}
                    if isinstance(target, dict)
                    else target
                )
            if isinstance(target, dict):
                target.setdefault("$id", schema["$id"])
                found.update(quirks_of(target, seen))
    return found


def resolve(schema: dict[str, Any], node: Any, notes: list[str] | None = None) -> dict[str, Any]:
    """``node`` with its local ``$ref`` followed; a definition that chooses between two shapes
    (``if``/``then``/``else`` on $refs) gives its ``then`` shape, its description going to ``notes``."""
    while isinstance(node, dict):
        if "$ref" in node and node["$ref"].startswith("#/$defs/"):
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        elif "$ref" in node.get("then", {}) and "$ref" in node.get("else", {}):
            if notes is not None and node.get("description"):
                notes.append(node["description"])
            node = node["then"]
        else:
            break
    return node if isinstance(node, dict) else {}


def root_object(schema: dict[str, Any], notes: list[str] | None = None) -> dict[str, Any]:
    return resolve(schema, schema.get("else", schema), notes)


def render() -> str:
    common = load("common")
    all_quirks: dict[str, str] = {}
    for name in NAMES:
        all_quirks.update(quirks_of(load(name)))
    quirk_rows = "\n".join(f"| `{qid}` | {cell(text)} |" for qid, text in sorted(all_quirks.items()))
    base = common["$id"].rsplit("/", 1)[0] + "/"
    out = [INTRO.format(base=base, quirks=quirk_rows)]
    out.append("## Shared definitions (`common.schema.json`)\n")
    out.append("| definition | type | notes |")
    out.append("|---|---|---|")
    for key, sub in common["$defs"].items():
        out.append(f"| `{key}` | {cell(describe(sub))} | {cell(sub.get('description', ''))} |")
    out.append("")
    for name in NAMES:
        schema = load(name)
        out.append(f"## {name}\n")
        out.append(f"**{schema['title']}** — `{name}.schema.json`, `$id` `{schema['$id']}`\n")
        out.append(schema["description"] + "\n")
        if "then" in schema and schema.get("if") == {"type": "string"}:
            out.append(
                "As a column, it may also hold a bare JSON string: Atlas's serialisation fallback "
                "(warning `serialisation-fallback`).\n"
            )
        notes: list[str] = []
        root = root_object(schema, notes)
        out += [note + "\n" for note in notes]
        if root.get("description"):
            out.append(root["description"] + "\n")
        if root.get("type") == "array":
            items = root.get("items", {})
            if isinstance(items, dict) and "then" in items:
                out.append(f"An array of {describe(items['then'])} or {describe(items['else'])}.\n")
            else:
                out.append(f"An array of {describe(items)}.\n")
            out += keys_table(resolve(schema, items))
        else:
            out += keys_table(root)
        quirks = quirks_of(schema)
        if quirks:
            out.append("")
            out.append("Tolerated quirks (warnings): " + ", ".join(f"`{q}`" for q in sorted(quirks)) + ".")
        defs = [key for key in schema.get("$defs", {}) if schema["$defs"][key] is not root]
        if defs:
            out.append("")
            out.append("Definitions in this file: " + ", ".join(f"`{d}`" for d in defs) + ".")
        out.append("")
        out.append("Example:\n")
        out.append("```json")
        out.append(json.dumps(schema["examples"][0], indent=2, ensure_ascii=False))
        out.append("```\n")
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if TARGET.read_text(encoding="utf-8") == text else 1)
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
