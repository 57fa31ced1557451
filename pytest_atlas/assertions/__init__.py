"""Assertion helpers. Each raises an ``AssertionError`` subclass that carries its result object."""

from __future__ import annotations
