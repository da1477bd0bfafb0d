"""Tokens without a server: minting, the stored form, authentication, salts, and
where the bootstrap admin token comes from. Pure: no mongod."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import bson
import pytest
from support.servers import BOOTSTRAP
from support.tables import rows

from genconf.errors import InvalidArgument
from genconf.security import auth


def mint(role: auth.Role, now: dt.datetime, **fields: Any) -> auth.MintedToken:
    """`auth.mint` with nothing but ``fields`` set: no unit, no expiry, no author."""
    defaults: dict[str, Any] = {
        "unit": None,
        "expires_at": None,
        "created_by": "",
        "description": "",
    }
    return auth.mint(role, now=now, **(defaults | fields))


def test_minted_times_are_what_mongodb_stores() -> None:
    """CreateToken answers with the minted record; ListTokens with what MongoDB gave
    back (milliseconds): they must be the same token, timestamps included."""
    now = dt.datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    minted = mint(auth.Role.OBSERVER, now, expires_at=now + dt.timedelta(hours=1))
    options = bson.CodecOptions(tz_aware=True)
    stored = bson.decode(bson.encode(minted.doc), codec_options=options)
    assert auth.TokenRecord.from_doc(stored) == auth.TokenRecord.from_doc(minted.doc)
    assert minted.doc["created_at"].microsecond == 123000


def test_token_format_and_authentication_rules() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    minted = mint(
        auth.Role.AGENT,
        now,
        unit="web/0",
        expires_at=now + dt.timedelta(hours=1),
        created_by="t",
        description="d",
    )
    assert auth.TOKEN_RE.match(minted.plaintext)
    token_id, secret = minted.plaintext.split("_", 2)[1:]
    assert minted.doc["_id"] == token_id
    stored = bson.encode(minted.doc)
    assert secret.encode() not in stored and minted.plaintext.encode() not in stored
    record = auth.TokenRecord.from_doc(minted.doc)
    lookup = {record.id: record}
    principal = auth.authenticate(minted.plaintext, lookup, None, now)
    assert (principal.role, principal.unit) == (auth.Role.AGENT, "web/0")
    forged = f"gct_{token_id}_{'A' * 43}"
    for token, why in [
        (forged, "not valid"),
        ("gct_0000000000000000_" + secret, "not valid"),
        ("something else", "invalid or unknown token"),
    ]:
        with pytest.raises(auth.Unauthenticated, match=why) as caught:
            auth.authenticate(token, lookup, None, now)
        assert secret not in caught.value.message
    with pytest.raises(auth.Unauthenticated, match="expired"):
        auth.authenticate(minted.plaintext, lookup, None, now + dt.timedelta(hours=1))
    with pytest.raises(InvalidArgument, match="--unit"):
        mint(auth.Role.AGENT, now)
    with pytest.raises(InvalidArgument, match="only agent tokens"):
        mint(auth.Role.OBSERVER, now, unit="web/0")
    with pytest.raises(InvalidArgument, match="at least"):
        auth.bootstrap_record("short")
    # A bootstrap token that happens to look like a genconf token still works.
    lookalike = mint(auth.Role.ADMIN, now).plaintext
    boot = auth.bootstrap_record(lookalike)
    assert auth.authenticate(lookalike, lookup, boot, now).token_id == auth.BOOTSTRAP_ID
    assert auth.authenticate(BOOTSTRAP, lookup, auth.bootstrap_record(BOOTSTRAP), now).role == (
        auth.Role.ADMIN
    )


def test_every_token_gets_a_salt_of_its_own() -> None:
    """Equal secrets must not hash alike: the salt is drawn per token, bootstrap too."""
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    minted = [mint(auth.Role.OBSERVER, now) for _ in range(50)]
    salts = [m.doc["salt"] for m in minted]
    assert len(set(salts)) == len(salts) and all(len(salt) == 16 for salt in salts)
    assert auth.digest(salts[0], "same secret") != auth.digest(salts[1], "same secret")
    first, second = auth.bootstrap_record(BOOTSTRAP), auth.bootstrap_record(BOOTSTRAP)
    assert first.salt != second.salt and first.hash != second.hash


def test_the_bootstrap_token_comes_from_the_file_else_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text(f"{BOOTSTRAP}\n")  # as `echo ... > file` writes it
    env = {auth.BOOTSTRAP_ENV: "another-admin-token-0123456789"}
    assert auth.read_bootstrap_token(path, {}) == BOOTSTRAP
    assert auth.read_bootstrap_token(str(path), env) == BOOTSTRAP  # the file wins
    assert auth.read_bootstrap_token(None, {auth.BOOTSTRAP_ENV: f" {BOOTSTRAP}\n"}) == BOOTSTRAP
    assert auth.read_bootstrap_token(None, {}) is None  # neither: authentication off


def test_an_empty_or_unreadable_bootstrap_token_is_an_error_not_auth_off(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n  \n")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" * 20)
    short = tmp_path / "short"
    short.write_text("admin\n")
    spaced = tmp_path / "spaced"
    spaced.write_text("an admin token with spaces in it\n")
    env = auth.BOOTSTRAP_ENV
    cases: dict[str, tuple[Path | None, dict[str, str], str]] = {
        "an empty file": (empty, {}, "is empty"),
        "an empty file, though the environment has one": (empty, {env: BOOTSTRAP}, "is empty"),
        "a missing file": (tmp_path / "missing", {}, "cannot read"),
        "a directory": (tmp_path, {}, "cannot read"),
        "a file that is not text": (binary, {}, "not UTF-8"),
        "a short token": (short, {}, f"at least {auth.MIN_BOOTSTRAP_LENGTH} characters"),
        "a token with spaces": (spaced, {}, "cannot travel in a gRPC header"),
        "a blank variable": (None, {env: "  \n"}, "is empty"),
        "a short variable": (None, {env: "admin"}, "at least"),
    }
    for what, (path, environ, why) in cases.items():
        with pytest.raises(InvalidArgument, match=why) as caught:
            auth.read_bootstrap_token(path, environ)
        message = caught.value.message
        assert (str(path) if path is not None else env) in message, f"{what}: {message}"
        assert "admin\n" not in message and "spaces in it" not in message, "echoes the token"
    with pytest.raises(InvalidArgument, match="needs the name of a file"):
        auth.read_bootstrap_token("", {env: BOOTSTRAP})  # `--admin-token-file ""`


# -- token format, roles and names, as tables --------------------------------------------

SECRET = "A" * 43
TOKEN_FORMAT = {
    "minted shape": (f"gct_0123456789abcdef_{SECRET}", ("0123456789abcdef", SECRET)),
    "secret with - and _": (f"gct_0123456789abcdef_{'-_' * 21}x", ("0123456789abcdef", None)),
    "uppercase id": (f"gct_0123456789ABCDEF_{SECRET}", None),
    "id one short": (f"gct_0123456789abcde_{SECRET}", None),
    "secret one short": (f"gct_0123456789abcdef_{SECRET[:-1]}", None),
    "secret one long": (f"gct_0123456789abcdef_{SECRET}A", None),
    "secret with a base64 '+'": (f"gct_0123456789abcdef_{SECRET[:-1]}+", None),
    "another prefix": (f"gca_0123456789abcdef_{SECRET}", None),
    "trailing newline": (f"gct_0123456789abcdef_{SECRET}\n", None),
    "empty": ("", None),
}


@pytest.mark.parametrize(("text", "parts"), rows(TOKEN_FORMAT))
def test_token_format(text: str, parts: tuple[str, str | None] | None) -> None:
    """``parts``: (id, secret) a token splits into (secret None: not checked), or None
    when it is not a genconf token at all."""
    match = auth.TOKEN_RE.match(text)
    if parts is None:
        assert match is None
        return
    assert match is not None
    token_id, secret = parts
    assert match[1] == token_id and auth.TOKEN_ID_RE.match(match[1])
    if secret is not None:
        assert match[2] == secret


ROLES = {
    "admin": ("admin", auth.Role.ADMIN),
    "controller": ("controller", auth.Role.CONTROLLER),
    "observer": ("observer", auth.Role.OBSERVER),
    "agent": ("agent", auth.Role.AGENT),
    "capitals are another word": ("Admin", None),
    "unknown": ("root", None),
    "empty": ("", None),
}


@pytest.mark.parametrize(("text", "role"), rows(ROLES))
def test_parse_role(text: str, role: auth.Role | None) -> None:
    if role is not None:
        assert auth.parse_role(text) is role
        return
    with pytest.raises(InvalidArgument, match="use one of admin, controller, observer, agent"):
        auth.parse_role(text)


TOKEN_NAMES = {
    "empty": ("", None),
    "plain": ("ci deploy bot", None),
    "unicode letters": ("déploiement", None),
    "at the limit": ("n" * auth.MAX_TOKEN_NAME, None),
    "one over the limit": ("n" * (auth.MAX_TOKEN_NAME + 1), "at most 64 characters, not 65"),
    "a line break": ("bot\nadmin", "control characters or line breaks"),
    "a tab": ("bot\tx", "control characters"),
    "an escape sequence": ("bot\x1b[31m", "control characters"),
}


@pytest.mark.parametrize(("name", "refusal"), rows(TOKEN_NAMES))
def test_check_token_name(name: str, refusal: str | None) -> None:
    if refusal is None:
        assert auth.check_token_name(name) == name
        return
    with pytest.raises(InvalidArgument, match=refusal):
        auth.check_token_name(name)
