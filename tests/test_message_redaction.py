"""The plugin's own messages hide the password of every connection string they quote, known to the
run or not (:func:`pytest_atlas._dsn.hide_dsn_passwords`): a URL is read as one word, so an "@"
further on in the line is never taken for the end of its password and nothing after the URL
changes; the user name, the host and the rest of the message stay as written."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_atlas._dsn import hide_dsn_passwords

from .test_dsn_redaction import SHAPES, Shape, leaks

#: (text, what it shows): each hides exactly the password, and nothing else changes
HIDDEN = [
    # URLs
    (
        "bad value 'postgresql://other:hunter2@h/db': expected a date",
        "bad value 'postgresql://other:***@h/db': expected a date",
    ),
    ("at postgres://u:hunter2@h:5432/db now", "at postgres://u:***@h:5432/db now"),
    ("postgresql+psycopg://u:hunter2@h/db", "postgresql+psycopg://u:***@h/db"),
    ("POSTGRESQL://u:hunter2@h/db", "POSTGRESQL://u:***@h/db"),
    ("postgresql://:hunter2@h/db", "postgresql://:***@h/db"),
    ("postgresql://u:hunter2@[::1]:1,h2:2/db", "postgresql://u:***@[::1]:1,h2:2/db"),
    ("postgresql://u:hunter2@h", "postgresql://u:***@h"),
    ("(postgresql://u:hunter2@h)", "(postgresql://u:***@h)"),
    ("postgresql://u@h/db?password=hunter2), then", "postgresql://u@h/db?password=*** then"),
    # a password with an unencoded "/", "@", "?" or "#": hidden whole
    ("postgresql://u:hun/ter2@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:hun@ter2@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:hu@n/te?r#2@h/db", "postgresql://u:***@h/db"),
    # a space in the password of a quoted value (!r): the value runs to its closing quote
    ("got 'postgresql://u:hun ter2@h/db' here", "got 'postgresql://u:***@h/db' here"),
    ('got "postgresql://u:it\'s hunter2@h/db" here', 'got "postgresql://u:***@h/db" here'),
    # a user part no parser can split: the whole userinfo
    ("postgresql://us/er:hunter2@h/db", "postgresql://***@h/db"),
    # the query's password and sslpassword, under an encoded key too; the rest of the query stays
    ("postgresql://u@h/db?password=hunter2&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql://u@h/db?%70assword=hunter2", "postgresql://u@h/db?%70assword=***"),
    ("postgresql://u@h/db?sslmode=require&sslpassword=hunter2", "postgresql://u@h/db?sslmode=require&sslpassword=***"),
    # a URL a path option normalised (one slash), and one whose scheme a parser cut off
    ("no such directory: /opt/postgresql:/u:hunter2@h/db", "no such directory: /opt/postgresql:/u:***@h/db"),
    ("value '//u:hunter2@h/db': expected key=value", "value '//u:***@h/db': expected key=value"),
    # key=value pairs
    ("host=h password=hunter2 dbname=db", "host=h password=*** dbname=db"),
    ("host=h password = hunter2", "host=h password = ***"),
    ("host=h password='hun ter\\'2' dbname=db", "host=h password=*** dbname=db"),
    ("host=h PASSWORD=hunter2", "host=h PASSWORD=***"),
    ("host=h sslpassword=hunter2", "host=h sslpassword=***"),
    ("(host=h password=hunter2), then", "(host=h password=*** then"),  # glued punctuation: hidden too
    # ... quoted by the message: its closing quote stays
    ("value 'host=h password=hunter2': expected a date", "value 'host=h password=***': expected a date"),
    ("value \"host=h password='hun ter2'\": expected", 'value "host=h password=***": expected'),
    ('value "host=h password=hunter2": expected', 'value "host=h password=***": expected'),
    # several in one line, each hidden, the text between them as it was
    (
        "postgresql://a:hunter2@h1/d and 'postgres://b:hunter3@h2/d', host=h3 password=hunter4 ok",
        "postgresql://a:***@h1/d and 'postgres://b:***@h2/d', host=h3 password=*** ok",
    ),
    # several lines
    ("one postgresql://a:hunter2@h/d\ntwo password=hunter3\n", "one postgresql://a:***@h/d\ntwo password=***\n"),
    # an "@" later in the line (an address, a second URL without password) is not the URL's
    (
        "postgresql://u:hunter2@h/db, ask admin@example.org",
        "postgresql://u:***@h/db, ask admin@example.org",
    ),
    (
        "'postgresql://u:hunter2@h/db' then postgresql://v@g/db, mail x@y",
        "'postgresql://u:***@h/db' then postgresql://v@g/db, mail x@y",
    ),
    # another scheme's userinfo is a password all the same
    ("fetched https://token:hunter2@example.org/x", "fetched https://token:***@example.org/x"),
]

#: text that holds no password: left exactly as it is
UNCHANGED = [
    "cannot reach postgresql://u@h/db: refused",
    "postgresql://h:5432/db",
    "postgresql://h/db?application_name=a@b&sslmode=require, mail admin@example.org",
    "postgresql://u@h/db and then user:name@host",  # an "@" after the URL: not its userinfo
    "cannot reach postgresql://u:***@h/db: refused",  # already redacted
    "cannot reach postgresql://***@h/db: refused",
    "host=h password=*** dbname=d",
    "'host=h password=***': expected",
    "password authentication failed for user 'app'",
    "the password is not set; no_password=1",
    "invalid value for --atlas-contract-since: 'yesterday': expected a date as YYYY-MM-DD",
    "ratio 3:4 at 12:00 by a@b",
    "",
]


@pytest.mark.parametrize(("text", "shown"), HIDDEN)
def test_the_password_of_any_dsn_in_a_message_is_hidden(text: str, shown: str) -> None:
    assert hide_dsn_passwords(text) == shown
    assert hide_dsn_passwords(shown) == shown  # idempotent


@pytest.mark.parametrize("text", UNCHANGED)
def test_a_message_without_a_password_is_left_as_it_is(text: str) -> None:
    assert hide_dsn_passwords(text) == text


#: shapes this function cannot know the password of: text that is no URL at all, and a password
#: with an unquoted space in key=value pairs (libpq reads neither)
_NOT_IN_MESSAGES = {"no-scheme", "kv-unquoted-space"}


@pytest.mark.parametrize("shape", [s for n, s in SHAPES.items() if n not in _NOT_IN_MESSAGES], ids=lambda s: s.dsn)
@pytest.mark.parametrize("form", ["{!r}", "{}", "[{}]", "x={}, y"])
def test_every_dsn_shape_quoted_in_a_message_loses_its_password(shape: Shape, form: str) -> None:
    """Every shape of DSN the redaction tests know, quoted the ways a message quotes a value."""
    text = f"invalid value for gate 'g': since is {form.format(shape.dsn)}, not a date; mail admin@example.org"
    shown = hide_dsn_passwords(text)
    assert not leaks(shown, shape), shown
    # the text before the value, and after the word it ends (an unquoted password takes the
    # punctuation glued to it along), is as it was
    assert shown.startswith("invalid value for gate 'g': since is ") and shown.endswith(
        " not a date; mail admin@example.org"
    ), shown


_NAME = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABC0123456789_-."), min_size=1, max_size=12)
#: a password: anything but whitespace, quotes, "=" (a "?" before a "=" starts the query) and a
#: backslash; "/", "@", "?", "#", ":" unencoded among them
_PASSWORD = st.text(
    st.characters(codec="ascii", exclude_characters=" \t\n\r\x0b\x0c'\"=\\", exclude_categories=("Cc",)),
    min_size=1,
    max_size=20,
).filter(lambda pw: pw != "***")


@given(user=_NAME, password=_PASSWORD, host=_NAME, tail=st.sampled_from(["", " (mail admin@example.org)", ": x@y z"]))
def test_a_url_loses_exactly_its_password(user: str, password: str, host: str, tail: str) -> None:
    for quote in ("'", ""):
        text = f"since is {quote}postgresql://{user}:{password}@{host}:5432/db{quote}{tail}"
        assert hide_dsn_passwords(text) == f"since is {quote}postgresql://{user}:***@{host}:5432/db{quote}{tail}"


@given(password=_PASSWORD, tail=st.sampled_from(["", " dbname=db", " (mail admin@example.org)"]))
def test_a_password_pair_loses_exactly_its_value(password: str, tail: str) -> None:
    assert hide_dsn_passwords(f"host=h password={password}{tail}") == f"host=h password=***{tail}"
    quoted = "'" + password.replace("\\", "\\\\") + "'"
    assert hide_dsn_passwords(f"host=h password={quoted}{tail}") == f"host=h password=***{tail}"
