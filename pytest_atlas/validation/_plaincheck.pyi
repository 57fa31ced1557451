"""The C storability check (``_plain.c``): see :mod:`pytest_atlas.validation._storable`."""

from typing import Any

#: the deepest level a document may reach (the document itself is level 1)
MAX_DEPTH: int

def is_plain_json(document: Any, /) -> bool: ...
