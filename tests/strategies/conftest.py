"""Importing Atlas (for its exporter and drift detector) imports litellm, which would try to fetch a
model cost map over the network at import time; point it at its bundled copy instead."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
