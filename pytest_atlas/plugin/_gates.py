"""pytest hooks of the gates area (``--atlas-gates``, reports). Owned by the gates work."""

from __future__ import annotations
