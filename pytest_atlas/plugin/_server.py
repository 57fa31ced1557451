"""pytest hooks of the database server: report header, keep-db summary, clean exit."""

from __future__ import annotations
