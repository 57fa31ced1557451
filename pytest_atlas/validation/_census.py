"""The unknown keys of a document that has no error and no quirk, without running a validator.

A document valid under the ``no_quirk`` variant fails the ``closed`` one only where an object has a
key that an ``additionalProperties: {}`` does not describe (see :mod:`._schemas`). Those keys are
found here by walking the document along the schema: at each such *census location* the object's
keys are compared with the location's property names (precomputed once per location), and only the
parts of the schema that can lead to a census location are followed. The result is what
:func:`~._explain.explain` makes of the ``closed`` variant's errors, without building an error (and a
Python copy of the instance) per finding.

Where the walk could not say the same -- a census location reached through ``anyOf``, ``oneOf``,
``not``, an ``if`` that itself reaches one, or a keyword this walk does not follow -- it gives up
(:class:`Unsupported`) and the caller takes the validator's way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from pytest_atlas._violation import UnknownField, json_path, json_type
from pytest_atlas.validation._schemas import QUIRK, resolve_ref

__all__ = ["KeyCensus", "Unsupported"]


class Unsupported(Exception):
    """The walk cannot give the census of this document exactly: use the validator's errors."""


#: keywords whose subschemas the walk never follows: reaching a census location through one of them
#: makes the census depend on which branch matches, so such a location is :class:`Unsupported`
_BRANCHING = (
    "oneOf",
    "not",
    "contains",
    "dependentSchemas",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
)
#: keywords that change how references resolve, or evaluate what other keywords left: not walked at all
_REFUSED = ("$dynamicRef", "$recursiveRef", "unevaluatedProperties", "unevaluatedItems")
#: a patternProperties pattern read the same by Python's re and by ECMA 262 (no escapes, classes or flags)
_PLAIN_PATTERN = re.compile(r"[A-Za-z0-9_ ^$.*+?|()\[\]{},:-]*")
_SIMPLE_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "string": lambda value: isinstance(value, str),
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}

#: compiles the ``no_quirk`` validator of a schema location (``uri#pointer``): the ``if`` conditions
CompileAt = Callable[[str], Any]


class _Node:
    """One schema object, compiled for the walk."""

    __slots__ = (
        "additional",
        "all",
        "any",
        "census",
        "condition",
        "else_",
        "items",
        "known",
        "other_keys",
        "patterns",
        "prefix",
        "properties",
        "then",
        "unsupported",
        "walk_all",
        "walk_properties",
    )

    def __init__(self) -> None:
        #: the property names of a census location (``additionalProperties: {}``), else None
        self.known: frozenset[str] | None = None
        self.census = False  # whether the walk can meet a census location from here
        self.unsupported = False  # meeting this node on the walk: Unsupported
        self.properties: dict[str, _Node] = {}
        self.patterns: list[tuple[re.Pattern[str], _Node]] = []
        self.additional: _Node | None = None
        self.items: _Node | None = None
        self.prefix: list[_Node] = []
        self.all: list[_Node] = []  # allOf branches and $ref targets: each applies to the same value
        #: anyOf branches: (the JSON types a branch that only tests the type accepts, else None; branch)
        self.any: list[tuple[frozenset[str] | None, _Node]] = []
        self.condition: Callable[[Any], bool] | None = None
        self.then: _Node | None = None
        self.else_: _Node | None = None
        #: what the walk follows (set by :meth:`KeyCensus._settle`): the properties and the schemas
        #: applying to the same value (pure ``$ref`` hops skipped) that lead to a census location
        self.walk_properties: tuple[tuple[str, _Node], ...] = ()
        self.walk_all: tuple[_Node, ...] = ()
        self.other_keys = False  # whether keys outside ``properties`` lead anywhere (patterns, additional)

    def children(self) -> list[_Node]:
        found = [*self.properties.values(), *(node for _, node in self.patterns), *self.prefix, *self.all]
        found += [node for _, node in self.any]
        found += [node for node in (self.additional, self.items, self.then, self.else_) if node is not None]
        return found


class KeyCensus:
    """The census walk of one schema (given by its node and its ``$id``)."""

    def __init__(self, schema: Mapping[str, Any], uri: str, compile_at: CompileAt) -> None:
        self._compile_at = compile_at
        self._nodes: dict[tuple[int, str], _Node] = {}
        self._branching: dict[tuple[int, str], list[Any]] = {}
        self._conditions: dict[int, tuple[Any, str]] = {}  # node → (its if subschema, where it is)
        self._root = self._compile(schema, uri, "")
        self._settle()

    # -- compiling -------------------------------------------------------------------------------------

    def _compile(self, schema: Any, base: str, pointer: str) -> _Node:
        key = (id(schema), base)
        node = self._nodes.get(key)
        if node is not None:
            return node
        node = _Node()
        self._nodes[key] = node
        if not isinstance(schema, dict):
            return node  # true / false: no keys to census
        if QUIRK in schema:
            # false in the no_quirk and closed variants: a document valid under no_quirk never has a
            # value where the walk would apply it
            return node
        if any(word in schema for word in _REFUSED) or ("$id" in schema and pointer):
            node.unsupported = True
            return node
        branching = [sub for word in _BRANCHING if word in schema for sub in _subschemas(word, schema[word])]
        if branching:
            self._branching[key] = branching
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            node.properties[name] = self._compile(sub, base, f"{pointer}/properties/{_escape(name)}")
        for pattern, sub in schema.get("patternProperties", {}).items():
            if not _PLAIN_PATTERN.fullmatch(pattern):
                node.unsupported = True
                continue
            child = self._compile(sub, base, f"{pointer}/patternProperties/{_escape(pattern)}")
            node.patterns.append((re.compile(pattern), child))
        additional = schema.get("additionalProperties")
        if additional == {}:
            node.known = frozenset(properties)
        elif additional is not None:
            node.additional = self._compile(additional, base, f"{pointer}/additionalProperties")
        if "items" in schema:
            node.items = self._compile(schema["items"], base, f"{pointer}/items")
        for index, sub in enumerate(schema.get("prefixItems", [])):
            node.prefix.append(self._compile(sub, base, f"{pointer}/prefixItems/{index}"))
        for index, sub in enumerate(schema.get("allOf", [])):
            node.all.append(self._compile(sub, base, f"{pointer}/allOf/{index}"))
        for index, sub in enumerate(schema.get("anyOf", [])):
            node.any.append((_type_test(sub), self._compile(sub, base, f"{pointer}/anyOf/{index}")))
        ref = schema.get("$ref")
        if isinstance(ref, str):
            resolved = _resolve(ref, base)
            if resolved is None:
                node.unsupported = True
            else:
                target, uri = resolved
                target_base, _, fragment = uri.partition("#")
                node.all.append(self._compile(target, target_base, fragment))
        if "if" in schema:
            condition = schema["if"]
            self._branching.setdefault(key, []).append(condition)  # an if that reaches a census location
            self._conditions[id(node)] = (condition, f"{base}#{pointer}/if")
            if "then" in schema:
                node.then = self._compile(schema["then"], base, f"{pointer}/then")
            if "else" in schema:
                node.else_ = self._compile(schema["else"], base, f"{pointer}/else")
        return node

    def _settle(self) -> None:
        """Which nodes lead to a census location (a fixed point: the schemas may be recursive); mark
        the ones that reach one through a branching keyword; compile the conditions the walk meets."""
        branch_nodes: dict[tuple[int, str], list[_Node]] = {}
        while len(branch_nodes) < len(self._branching):  # compiling a branch can find more branching
            for key, subschemas in list(self._branching.items()):
                if key not in branch_nodes:
                    branch_nodes[key] = [self._compile(sub, key[1], "/-") for sub in subschemas]
        every = list(self._nodes.values())
        # a node the walk refuses may hide a census location below it: it counts as reaching one
        reaching = {id(node): node.known is not None or node.unsupported for node in every}
        changed = True
        while changed:
            changed = False
            for node in every:
                if not reaching[id(node)] and any(reaching[id(child)] for child in node.children()):
                    reaching[id(node)] = changed = True
            for key, nodes in branch_nodes.items():
                owner = self._nodes[key]
                if not reaching[id(owner)] and any(reaching[id(sub)] for sub in nodes):
                    reaching[id(owner)] = changed = True
        for key, nodes in branch_nodes.items():
            if any(reaching[id(sub)] for sub in nodes):
                self._nodes[key].unsupported = True
        for node in every:
            node.census = reaching[id(node)]
        # the conditions of the nodes the walk can meet (not those seen only under a branching keyword)
        seen: set[int] = set()
        seen_nodes: list[_Node] = []
        stack = [self._root]
        while stack:
            node = stack.pop()
            if id(node) in seen or not node.census or node.unsupported:
                continue
            seen.add(id(node))
            seen_nodes.append(node)
            pending = self._conditions.get(id(node))
            if pending is not None:
                node.condition = _condition(pending[0], pending[1], self._compile_at)
            node.walk_properties = tuple(
                (name, _through(child)) for name, child in node.properties.items() if child.census
            )
            node.walk_all = tuple(_hops(node.all))
            stack.extend(node.children())

        for node in seen_nodes:
            node.then = _through(node.then) if node.then is not None else None
            node.else_ = _through(node.else_) if node.else_ is not None else None
            node.items = _through(node.items) if node.items is not None else None
            node.additional = _through(node.additional) if node.additional is not None else None
            node.patterns = [(pattern, _through(child)) for pattern, child in node.patterns]
            node.prefix = [_through(child) for child in node.prefix]
            node.other_keys = bool(node.patterns) or (node.additional is not None and node.additional.census)

    # -- walking ---------------------------------------------------------------------------------------

    def __call__(self, document: Any) -> list[UnknownField]:
        """The unknown keys of ``document``, which must be valid under the ``no_quirk`` variant; raises
        :class:`Unsupported` where the walk cannot say."""
        found: list[UnknownField] = []
        if self._root.census:
            self._walk(self._root, document, (), found)
        return found

    def _walk(self, node: _Node, value: Any, path: tuple[str | int, ...], found: list[UnknownField]) -> None:
        if node.unsupported:
            raise Unsupported
        if type(value) is dict:  # what JSON parsers return (the closed variant reads a dict subclass alike)
            known = node.known
            if known is not None:
                extra = value.keys() - known
                if extra:
                    self._unknown(node, value, extra, path, found)
            for name, child in node.walk_properties:
                if name in value:
                    self._walk(child, value[name], (*path, name), found)
            if node.other_keys:
                self._walk_other_keys(node, value, path, found)
        elif type(value) is list:
            if node.prefix:
                for index, child in enumerate(node.prefix[: len(value)]):
                    if child.census:
                        self._walk(child, value[index], (*path, index), found)
            items = node.items
            if items is not None and items.census:
                inside = (*path, "[*]")
                for element in value[len(node.prefix) :]:
                    self._walk(items, element, inside, found)
        elif isinstance(value, dict | list):
            raise Unsupported  # a subclass: leave it to the validator
        for child in node.walk_all:
            self._walk(child, value, path, found)
        if node.any:
            self._walk_any(node, value, path, found)
        condition = node.condition
        if condition is not None:
            branch = node.then if condition(value) else node.else_
            if branch is not None and branch.census:
                self._walk(branch, value, path, found)

    @staticmethod
    def _unknown(
        node: _Node, value: dict[str, Any], extra: set[str], path: tuple[str | int, ...], found: list[UnknownField]
    ) -> None:
        if node.patterns:
            extra = {key for key in extra if not any(pattern.search(key) for pattern, _ in node.patterns)}
        holder = json_path(path)
        for key in extra:
            found.append(UnknownField(path=holder, key=key, json_type=json_type(value[key])))

    def _walk_any(self, node: _Node, value: Any, path: tuple[str | int, ...], found: list[UnknownField]) -> None:
        """An ``anyOf`` whose branches, but one, only test the type (``null`` or a rich object): the
        value's type picks the branch. A type-only branch that accepts it passes under every variant
        (no census); one other branch left is the only one that can pass, so the ``closed`` variant's
        errors for the ``anyOf`` are that branch's; more than one: :class:`Unsupported`."""
        kind = _kind(value)
        others = []
        for types, child in node.any:
            if types is None:
                others.append(child)
            elif kind in types:
                return
            elif kind == "number" and "integer" in types:
                if isinstance(value, int):
                    return
                raise Unsupported  # a float the integer type may accept (1.0) or not
        if len(others) > 1 and any(child.census for child in others):
            raise Unsupported
        if others and others[0].census:
            self._walk(others[0], value, path, found)

    def _walk_other_keys(
        self, node: _Node, value: dict[str, Any], path: tuple[str | int, ...], found: list[UnknownField]
    ) -> None:
        for key, item in value.items():
            matched = False
            for pattern, child in node.patterns:
                if pattern.search(key):
                    matched = True
                    if child.census:
                        self._walk(child, item, (*path, "*"), found)
            additional = node.additional
            if not matched and key not in node.properties and additional is not None and additional.census:
                self._walk(additional, item, (*path, "*"), found)


def _resolve(ref: str, base: str) -> tuple[Any, str] | None:
    """(the node a ``$ref`` points at, its ``uri#pointer``), or None when it points at nothing."""
    try:
        return resolve_ref(ref, base)
    except KeyError:
        return None


def _is_hop(node: _Node) -> bool:
    """A node that only applies other schemas to the same value (a ``$ref`` or an ``allOf``)."""
    return (
        not node.unsupported
        and node.known is None
        and not (node.properties or node.patterns or node.prefix or node.any)
        and node.additional is None
        and node.items is None
        and node.then is None
        and node.else_ is None
        and node.condition is None
    )


def _hops(children: list[_Node]) -> list[_Node]:
    """The census-reaching nodes among ``children``, each pure hop replaced by what it applies (in
    order, so the walk meets the same locations the same number of times)."""
    out: list[_Node] = []
    pending = list(reversed(children))
    depth = 0
    while pending:
        node = pending.pop()
        if not node.census:
            continue
        depth += 1
        if _is_hop(node) and depth < 64:  # a cycle of pure hops is kept as it is (then walked)
            pending.extend(reversed(node.all))
            continue
        out.append(node)
    return out


_ANNOTATIONS = frozenset({"description", "title", "$comment", "examples", "default", "type"})


def _type_test(schema: Any) -> frozenset[str] | None:
    """The JSON types a subschema accepts when it tests nothing but the type (else None)."""
    if not isinstance(schema, dict) or "type" not in schema or not set(schema) <= _ANNOTATIONS:
        return None
    types = schema["type"]
    names = [types] if isinstance(types, str) else types
    if not isinstance(names, list) or not all(name in _KINDS for name in names):
        return None
    return frozenset(names)


_KINDS = ("object", "array", "string", "number", "integer", "boolean", "null")


def _kind(value: Any) -> str:
    """A value's JSON type for a type test: ``number`` for every int and float (``integer`` may accept
    either, so a number never counts as rejected by it)."""
    kind = json_type(value)
    return "number" if kind == "integer" else kind


def _through(node: _Node) -> _Node:
    """``node``, or the one node it only hops to (a ``$ref`` alone)."""
    targets = _hops([node])
    return targets[0] if len(targets) == 1 else node


def _subschemas(keyword: str, value: Any) -> list[Any]:
    """The subschemas held by one branching keyword's value."""
    if keyword == "dependentSchemas" and isinstance(value, dict):
        return list(value.values())
    return list(value) if isinstance(value, list) else [value]


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _condition(schema: Any, location: str, compile_at: CompileAt) -> Callable[[Any], bool]:
    """Whether a value passes an ``if`` subschema that reaches no census location (so ``no_quirk`` and
    ``closed`` agree on it): a plain type test in Python, anything else by its compiled validator."""
    if isinstance(schema, bool):
        return lambda value: schema
    if isinstance(schema, dict) and list(schema) == ["type"] and schema["type"] in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[schema["type"]]
    validator = compile_at(location)

    def passes(value: Any) -> bool:
        return bool(validator.is_valid(value))

    return passes
