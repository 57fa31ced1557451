"""Who may log in to a server the plugin starts.

The design, and why:

* **A unix socket in a private folder by default** (``listen_addresses = ''``): the socket lives in
  ``run-<token>/sock``, a 0700 folder of the server account, so no other account can even reach it
  (the kernel checks the folder before PostgreSQL sees anything). No TCP listener exists, so nothing
  on the machine, in a container sharing its network or behind a port forward can try a login.
* **``peer`` authentication with a map** on that socket: the kernel tells PostgreSQL which OS
  account connects (``SO_PEERCRED``), and the map lets exactly two accounts log in, as the
  superuser role: the one pytest runs as and the server account (which owns the data files
  anyway). No password exists, so none can leak. Roles a test creates log in with their password.
* **TCP only when asked** (``--atlas-tcp``, or a non-zero ``--atlas-port``): the server then also
  listens on 127.0.0.1, where the only rule is ``scram-sha-256`` with a random password made for
  this run (set at every start, so a cached cluster never carries an old one). The password is sent
  to the server already hashed (a SCRAM verifier computed by libpq), never on a command line, and
  handed to clients through a 0600 passfile owned by the invoking user that every DSN names
  (``passfile=...``): the DSN itself has no secret in it.
* **No ``trust`` line anywhere**, and the rules are written for each run before each start, outside
  the data folder (``hba_file``/``ident_file``), so a cached cluster never carries another run's
  access rules and the server account cannot change them.
"""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
from psycopg import sql

from pytest_atlas._dsn import remember_secret

__all__ = ["MAP", "hba_rules", "ident_map", "new_password", "set_password"]

#: the pg_ident map name
MAP = "atlas"


def _token(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def hba_rules(*, tcp: bool, superuser: str) -> str:
    """The superuser logs in by ``peer`` (mapped accounts only); any other role (one a test
    created) needs its password; TCP, when asked for, needs a password too."""
    lines = [
        "# written by pytest-atlas for this run: the socket admits the mapped OS accounts as the",
        "# superuser, other roles with their password; TCP (when asked for) needs a password. Nothing is trusted.",
        f"local all {superuser} peer map={MAP}",
        "local all all scram-sha-256",
    ]
    if tcp:
        lines.append("host all all 127.0.0.1/32 scram-sha-256")
    return "\n".join(lines) + "\n"


def ident_map(os_users: list[str], role: str) -> str:
    """Each OS account in ``os_users`` may log in as ``role`` (and as nothing else)."""
    lines = ["# written by pytest-atlas for this run"]
    lines += [f"{MAP} {_token(user)} {_token(role)}" for user in dict.fromkeys(os_users)]
    return "\n".join(lines) + "\n"


def new_password() -> str:
    """A random password for one run (URL-safe: no quoting needed anywhere), which reports of this
    process never show (:func:`~pytest_atlas._dsn.scrub` removes it)."""
    password = secrets.token_urlsafe(24)
    remember_secret(password)
    return password


def set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Give ``role`` this password, sending only its SCRAM verifier (computed by libpq here): the
    password itself never reaches the server, its log or any statistics view."""
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier.decode("ascii")))
    )
