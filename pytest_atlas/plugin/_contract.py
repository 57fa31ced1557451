"""pytest hooks of the payload-contract area (``--atlas-contract``). Owned by the contracts work."""

from __future__ import annotations
