"""The interpreter's thread switch interval while contract scans read: lowered for the whole
process while any scan reads, put back when the last one ends.

A scan's fetching thread needs the GIL promptly when the server's answer arrives (see
``_check._prefetched``). The interval is the process's, not a thread's: saved and restored by each
scan, two scans in two threads left it lowered for good (A saves 5 ms and lowers it, B saves the
lowered value, A restores 5 ms under B, B restores the lowered value). So it is counted: the first
scan to start saves and lowers it, the last to end puts it back.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SWITCH_INTERVAL", "switching_often"]

#: the thread switch interval while a column is scanned (seconds)
SWITCH_INTERVAL = 0.0005


class _Lowered:
    """How many scans read now, and the interval the first of them found."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved = 0.0


_LOWERED = _Lowered()


@contextmanager
def switching_often() -> Iterator[None]:
    """Inside, the switch interval is at most :data:`SWITCH_INTERVAL`; after the last one (of any
    thread) ends, it is what it was before the first began."""
    lowered = _LOWERED
    with lowered.lock:
        if lowered.depth == 0:
            lowered.saved = sys.getswitchinterval()
            sys.setswitchinterval(min(lowered.saved, SWITCH_INTERVAL))
        lowered.depth += 1
    try:
        yield
    finally:
        with lowered.lock:
            lowered.depth -= 1
            if lowered.depth == 0:
                sys.setswitchinterval(lowered.saved)
