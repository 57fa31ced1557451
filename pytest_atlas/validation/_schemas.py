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
from urllib.parse import unquote, urljoin

from pytest_atlas._resources import jsonschemas_dir
from pytest_atlas.errors import AtlasError

__all__ = [
    "ALL_NAMES",
    "BASE_URI",
    "COMMON",
    "SCHEMA_NAMES",
    "Variant",
    "closure",
    "closure_of",
    "compile_error",
    "derive",
    "document",
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


#: every file in jsonschemas/: the payload schemas and the shared definitions
ALL_NAMES: tuple[str, ...] = (COMMON, *SCHEMA_NAMES)


@functools.cache
def document(name: str) -> Mapping[str, Any]:
    """One shipped schema document, loaded on first use (only its ``$id`` is checked here: that
    every file is a valid draft 2020-12 schema is checked by the test suite, and a damaged
    installed file fails when it is compiled, with the file named; see :func:`compile_error`)."""
    path = jsonschemas_dir() / f"{name}.schema.json"
    loaded = _load(path)
    if loaded.get("$id") != uri_of(name):
        raise AtlasError(
            f"{path} has $id {loaded.get('$id')!r}, expected {uri_of(name)!r}",
            hint="keep $id equal to the published URL of the file",
        )
    return loaded


def documents() -> Mapping[str, Mapping[str, Any]]:
    """name → schema document, for every shipped file (each loaded once)."""
    return {name: document(name) for name in ALL_NAMES}


def compile_error(names: tuple[str, ...], exc: Exception) -> AtlasError:
    """A shipped schema that does not compile: name the files (they were edited or damaged)."""
    folder = jsonschemas_dir()
    files = ", ".join(str(folder / f"{name}.schema.json") for name in names)
    return AtlasError(
        f"a shipped JSON Schema does not compile ({files}): {str(exc).splitlines()[0][:300]}",
        hint="reinstall pytest-atlas: pip install --force-reinstall pytest-atlas; if you edited the file, fix it",
    )


def referenced(schema: Any, base: str = BASE_URI) -> set[str] | None:
    """The shipped schemas that ``schema`` ``$ref``s directly (by file name or ``$id``), or None when
    it refers to something else (then every shipped schema is made available)."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                target = ref if "://" in ref else base.rsplit("/", 1)[0] + "/" + ref
                name = name_of_uri(target)
                if name is None or name not in ALL_NAMES:
                    return None
                names.add(name)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


@functools.cache
def closure(name: str) -> tuple[str, ...]:
    """``name`` and every shipped schema it reaches through ``$ref`` (what compiling it needs)."""
    return closure_of(document(name), extra=(name,))


def closure_of(schema: Any, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The shipped schemas a schema reaches through ``$ref``, transitively (all of them when unknown)."""
    seen = set(extra)
    pending = referenced(schema)
    if pending is None:
        return tuple(sorted(ALL_NAMES))
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        more = referenced(document(name), uri_of(name))
        if more is None:
            return tuple(sorted(ALL_NAMES))
        pending |= more - seen
    return tuple(sorted(seen))


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
def variant_document(name: str, variant: Variant) -> Any:
    """One shipped schema in its ``variant`` form, derived on first use."""
    return derive(document(name), variant) if variant != "lenient" else document(name)


def variant_documents(variant: Variant) -> Mapping[str, Any]:
    """Every shipped schema in its ``variant`` form."""
    return {name: variant_document(name, variant) for name in ALL_NAMES}


@functools.cache
def _registry() -> Any:
    """The shipped (lenient) schemas as a ``referencing`` registry, by their ``$id``s; it never
    retrieves anything else."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    return Registry().with_resources(
        (uri_of(name), Resource.from_contents(dict(document(name)), default_specification=DRAFT202012))
        for name in ALL_NAMES
    )


def _resolved(ref: str, base_uri: str, root: Any = None) -> Any:
    from referencing import Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    try:
        if root is not None:
            resource = Resource.from_contents(root, default_specification=DRAFT202012)
            registry = _registry().with_resource(base_uri or "urn:pytest-atlas:root", resource)
            return registry.resolver(base_uri or "urn:pytest-atlas:root").lookup(ref).contents
        return _registry().resolver(base_uri).lookup(ref).contents
    except Unresolvable as exc:
        raise KeyError(ref) from exc


def lookup(location: str, *, root: Any = None) -> Any:
    """The node of the *lenient* schemas at ``location``: an absolute URI with a JSON-pointer fragment
    (``…/common.schema.json#/$defs/tags/then``), or a bare fragment into ``root``. Resolved by
    ``referencing`` over the shipped schemas.

    Raises ``KeyError`` when the location does not exist.
    """
    base, _, fragment = location.partition("#")
    if base:
        name = name_of_uri(base)
        if name is None or name not in ALL_NAMES:
            raise KeyError(location)
        return _shipped_node(location)
    return _resolved("#" + fragment, "", root=root)


@functools.cache
def _shipped_node(location: str) -> Any:
    """A node of the shipped schemas (which never change): resolved once per location, since the
    census of a big table asks for the same few locations on every row with an unknown key."""
    return _pointer_node(location) if _is_pointer_into_shipped(location) else _resolved(location, "")


def resolve_ref(ref: str, base_uri: str) -> tuple[Any, str]:
    """Follow a ``$ref`` written in the schema whose URI is ``base_uri``: (target node, its URI).

    Raises ``KeyError`` when it points at nothing."""
    target_uri = urljoin(base_uri, ref)
    if "#" not in target_uri:
        target_uri += "#"
    if _is_pointer_into_shipped(target_uri):
        return _pointer_node(target_uri), target_uri
    return _resolved(ref, base_uri.split("#", 1)[0]), target_uri


def _is_pointer_into_shipped(location: str) -> bool:
    """Whether ``location`` (``uri#fragment``) is a JSON pointer (or none) into a shipped file."""
    uri, _, fragment = location.partition("#")
    return name_of_uri(uri) in ALL_NAMES and (not fragment or fragment.startswith("/"))


def _pointer_node(location: str) -> Any:
    """The node at a JSON pointer into a shipped file (``KeyError`` when there is none). The shipped
    files hold one ``$id`` each (at the top) and no anchors, so a pointer is a walk of the document:
    what ``referencing`` does, without importing it (the census's first document does not pay for it)."""
    uri, _, fragment = location.partition("#")
    name = name_of_uri(uri)
    assert name is not None
    node: Any = document(name)
    for part in fragment.split("/")[1:]:
        key = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise KeyError(location)
    return node
