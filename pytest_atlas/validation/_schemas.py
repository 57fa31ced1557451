"""The shipped JSON Schemas: loading, names, and the derived variants the validator compiles.

Three variants of every schema file are used:

``lenient``
    the files as shipped: everything Atlas really writes validates, quirks included;
``no_quirk``
    every subschema carrying ``x-atlas-quirk`` replaced by ``false``: a document valid under
    ``lenient`` but not here contains a tolerated quirk, and the errors say where;
``closed``
    ``no_quirk`` with every ``additionalProperties: {}`` (where Atlas tolerates caller keys) replaced
    by ``false``: the extra errors name the keys the schema does not describe (the census).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from pytest_atlas._resources import jsonschemas_dir
from pytest_atlas.errors import AtlasError

__all__ = [
    "BASE_URI",
    "COMMON",
    "SCHEMA_NAMES",
    "Variant",
    "derive",
    "documents",
    "lookup",
    "name_of_uri",
    "uri_of",
]

BASE_URI = "https://raw.githubusercontent.com/pytest-atlas/pytest-atlas/main/jsonschemas/"

#: every payload schema shipped with pytest-atlas (``jsonschemas/<name>.schema.json``)
SCHEMA_NAMES: tuple[str, ...] = (
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
)

#: the file of shared definitions; not a payload schema
COMMON = "common"

Variant = Literal["lenient", "no_quirk", "closed"]

QUIRK = "x-atlas-quirk"


def uri_of(name: str) -> str:
    return f"{BASE_URI}{name}.schema.json"


def name_of_uri(uri: str) -> str | None:
    base = uri.split("#", 1)[0]
    if base.startswith(BASE_URI) and base.endswith(".schema.json"):
        return base[len(BASE_URI) : -len(".schema.json")]
    return None


@functools.cache
def documents() -> Mapping[str, Mapping[str, Any]]:
    """name → schema document, loaded once from the installed ``jsonschemas/`` folder and checked."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    folder = jsonschemas_dir()
    loaded: dict[str, Mapping[str, Any]] = {}
    for name in (COMMON, *SCHEMA_NAMES):
        path = folder / f"{name}.schema.json"
        loaded[name] = _load(path)
        try:
            Draft202012Validator.check_schema(loaded[name])
        except SchemaError as exc:
            raise AtlasError(
                f"the shipped JSON Schema {path} is not a valid draft 2020-12 schema: {exc.message}",
                hint="reinstall pytest-atlas; if you edited the file, fix it",
            ) from None
        if loaded[name].get("$id") != uri_of(name):
            raise AtlasError(
                f"{path} has $id {loaded[name].get('$id')!r}, expected {uri_of(name)!r}",
                hint="keep $id equal to the published URL of the file",
            )
    return loaded


def _load(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AtlasError(
            f"cannot read the shipped JSON Schema {path}: {exc}",
            hint="reinstall pytest-atlas: pip install --force-reinstall pytest-atlas",
        ) from None
    if not isinstance(data, dict):
        raise AtlasError(f"{path} does not hold a JSON object", hint="reinstall pytest-atlas")
    return data


def derive(schema: Any, variant: Variant) -> Any:
    """The ``variant`` form of one schema (see the module docstring). ``lenient`` is a deep copy."""
    if variant == "lenient":
        return copy.deepcopy(schema)
    return _strip(schema, closed=variant == "closed")


def _strip(node: Any, *, closed: bool) -> Any:
    if isinstance(node, dict):
        if QUIRK in node:
            return False
        out: dict[str, Any] = {}
        for key, value in node.items():
            if closed and key == "additionalProperties" and value == {}:
                out[key] = False
            elif key in ("const", "enum", "examples", "default"):
                out[key] = copy.deepcopy(value)
            else:
                out[key] = _strip(value, closed=closed)
        return out
    if isinstance(node, list):
        return [_strip(item, closed=closed) for item in node]
    return node


@functools.cache
def variant_documents(variant: Variant) -> Mapping[str, Any]:
    return {name: derive(doc, variant) for name, doc in documents().items()}


def lookup(location: str, *, root: Any = None) -> Any:
    """The node of the *lenient* schemas at ``location``: an absolute URI with a JSON-pointer fragment
    (``…/common.schema.json#/$defs/tags/then``), or a bare fragment into ``root``.

    Raises ``KeyError`` when the location does not exist.
    """
    base, _, fragment = location.partition("#")
    if base:
        name = name_of_uri(base)
        if name is None or name not in documents():
            raise KeyError(location)
        node: Any = documents()[name]
    else:
        node = root
    if not fragment:
        return node
    for raw in fragment.lstrip("/").split("/"):
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        elif isinstance(node, dict):
            node = node[token]
        else:
            raise KeyError(location)
    return node


def resolve_ref(ref: str, base_uri: str) -> tuple[Any, str]:
    """Follow a ``$ref`` written in the schema whose URI is ``base_uri``: (target node, its URI)."""
    if ref.startswith("#"):
        target_uri = base_uri.split("#", 1)[0] + ref
    elif "://" in ref:
        target_uri = ref
    else:
        target_uri = base_uri.rsplit("/", 1)[0] + "/" + ref
    if "#" not in target_uri:
        target_uri += "#"
    return lookup(target_uri), target_uri
