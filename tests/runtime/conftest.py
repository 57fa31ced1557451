"""Every runtime test runs Atlas for real, offline, under a guard that fails the test on any network
access that is not the test's own database: a connect to anything but a unix socket or loopback, or
a name lookup of anything but localhost, unless the database driver (asyncpg) makes it.

Atlas and litellm swallow many errors (a failed judge call becomes an audit entry, a failed cost-map
download a log line), so the guard records what it blocked and the test fails at teardown."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest

_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex
_REAL_GETADDRINFO = socket.getaddrinfo


def _from_database_driver() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_globals.get("__name__", "").startswith(("asyncpg", "psycopg")):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _local_host(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _ip_literal(host: Any) -> bool:
    try:
        ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        return False
    return True


class NetworkGuard:
    def __init__(self) -> None:
        self.blocked: list[str] = []

    def _check(self, what: str, host: Any) -> None:
        if _local_host(host) or _from_database_driver():
            return
        self.blocked.append(f"{what} {host!r}")
        raise OSError(f"network access blocked by the test guard: {what} {host!r}")

    def connect(self, sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            self._check("connect", address[0])
        return _REAL_CONNECT(sock, address)

    def connect_ex(self, sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            self._check("connect", address[0])
        return _REAL_CONNECT_EX(sock, address)

    def getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _ip_literal(host):  # a literal address is no lookup; connect() checks it
            self._check("name lookup", host)
        return _REAL_GETADDRINFO(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    guard = NetworkGuard()
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: guard.connect(sock, address))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda sock, address: guard.connect_ex(sock, address))
    monkeypatch.setattr(socket, "getaddrinfo", guard.getaddrinfo)
    yield guard
    assert guard.blocked == [], f"the run tried to reach the network: {guard.blocked}"
