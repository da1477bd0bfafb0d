"""Who may call what: bearer tokens, roles, and the one rule table.

Tokens look like ``gct_<id>_<secret>``: the id finds the stored record, the
secret (256 random bits) is checked against ``HMAC-SHA256(salt, secret)``. A
secret with that much entropy cannot be guessed, so a slow password hash would
only cost CPU on every call; the salt keeps equal secrets from hashing alike.
Neither plain tokens nor secrets are ever stored or logged.

`RULES` maps every RPC to the roles that may call it; an RPC without a rule is
refused (deny by default). An ``agent`` token is bound to one unit and may only
touch that unit's config and reports; it is bound to the unit's incarnation (its
uid), so it stops working when the application is removed, even if a new one of
the same name appears (`incarnation_problem`).

A token has a name. With authentication on, every write records the caller's
token ("NAME (token ID)") as its author; the name the client sends is kept only
as "on behalf of" (`authorship`).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from genconf.domain import names
from genconf.domain.authorship import Authorship
from genconf.errors import InvalidArgument, PermissionDenied, Unauthenticated

TOKEN_RE: Final = re.compile(r"^gct_([0-9a-f]{16})_([A-Za-z0-9_-]{43})\Z")
TOKEN_ID_RE: Final = re.compile(r"^[0-9a-f]{16}\Z")
BOOTSTRAP_ID: Final = "bootstrap"
BOOTSTRAP_NAME: Final = "bootstrap admin"
MAX_TOKEN_NAME: Final = 64
MIN_BOOTSTRAP_LENGTH: Final = 16
BOOTSTRAP_ENV: Final = "GENCONF_ADMIN_TOKEN"
# A bearer token travels in an HTTP/2 header after "Bearer ": printable ASCII, no spaces.
_HEADER_SAFE_RE: Final = re.compile(r"[\x21-\x7e]+\Z")
_GENERATE_HINT: Final = (
    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


class Role(enum.StrEnum):
    ADMIN = "admin"
    CONTROLLER = "controller"
    OBSERVER = "observer"
    AGENT = "agent"


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise InvalidArgument(
            f"unknown role {text!r}: use one of {', '.join(r.value for r in Role)}"
        ) from None


def digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class MintedToken:
    """A new token: ``plaintext`` is shown once; ``doc`` is what gets stored."""

    plaintext: str
    doc: dict[str, Any]


def check_token_name(name: str) -> str:
    """A token's name: it is shown as the author of writes, so short and printable."""
    if len(name) > MAX_TOKEN_NAME:
        raise InvalidArgument(
            f"a token name is at most {MAX_TOKEN_NAME} characters, not {len(name)}"
        )
    if not name.isprintable():
        raise InvalidArgument("a token name must not hold control characters or line breaks")
    return name


def _to_millis(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def mint(
    role: Role,
    *,
    unit: str | None,
    expires_at: dt.datetime | None,
    created_by: str,
    description: str,
    now: dt.datetime,
    name: str = "",
    unit_uid: str = "",
) -> MintedToken:
    """A new token. An agent token records ``unit_uid``, the incarnation of
    ``unit`` it is bound to (the caller reads it from the model)."""
    check_token_name(name)
    if role is Role.AGENT:
        if not unit:
            raise InvalidArgument("an agent token needs --unit APP/N: it is bound to one unit")
        names.parse_unit_name(unit)
    elif unit:
        raise InvalidArgument(f"only agent tokens are bound to a unit, not {role.value} tokens")
    if expires_at is not None and expires_at <= now:
        raise InvalidArgument("the expiry must be in the future")
    # MongoDB keeps milliseconds: the record CreateToken answers with must equal
    # the one every replica reads back.
    now = _to_millis(now)
    expires_at = _to_millis(expires_at) if expires_at is not None else None
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    doc = {
        "_id": token_id,
        "role": role.value,
        "unit": unit or None,
        "unit_uid": unit_uid if role is Role.AGENT else "",
        "name": name,
        "salt": salt,
        "hash": digest(salt, secret),
        "created_by": created_by,
        "description": description[:200],
        "created_at": now,
        "expires_at": expires_at,
        "revoked_at": None,
        "revision": 1,
    }
    return MintedToken(f"gct_{token_id}_{secret}", doc)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A stored token as the server knows it (the hash, never the secret)."""

    id: str
    role: Role
    unit: str | None
    salt: bytes
    hash: bytes
    expires_at: dt.datetime | None
    revoked: bool
    created_by: str = ""
    description: str = ""
    created_at: dt.datetime | None = None
    name: str = ""
    # The incarnation of ``unit`` an agent token is bound to ("" for tokens minted
    # before uids were kept: they match only a unit that has none either).
    unit_uid: str = ""

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> TokenRecord:
        return cls(
            id=doc["_id"],
            role=Role(doc["role"]),
            unit=doc.get("unit"),
            salt=bytes(doc["salt"]),
            hash=bytes(doc["hash"]),
            expires_at=doc.get("expires_at"),
            revoked=doc.get("revoked_at") is not None,
            created_by=doc.get("created_by", ""),
            description=doc.get("description", ""),
            created_at=doc.get("created_at"),
            name=doc.get("name", ""),
            unit_uid=doc.get("unit_uid") or "",
        )

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one RPC."""

    token_id: str
    role: Role
    unit: str | None = None
    name: str = ""
    unit_uid: str = ""

    @property
    def label(self) -> str:
        """How writes record this caller: the token's id is the identity, its name a hint."""
        return f"{self.name} (token {self.token_id})" if self.name else f"token {self.token_id}"


def authorship(principal: Principal | None, claimed: str) -> Authorship:
    """The author of a write: the caller's token when authentication is on (the name
    the client claims, which anyone can forge, kept only as ``on_behalf_of``); the
    claimed name, marked unauthenticated, when it is off (``principal`` None)."""
    if principal is None:
        return Authorship(claimed)
    return Authorship(principal.label, claimed, True)


def incarnation_problem(
    token_id: str, unit: str | None, bound_uid: str, current_uid: str | None
) -> str | None:
    """Why an agent token bound to incarnation ``bound_uid`` of ``unit`` no longer
    works when the unit's uid is now ``current_uid`` (None: no such unit); None if
    it still does. Uids are never reused, so either way the token is done for good."""
    if current_uid is None:
        return (
            f"token {token_id} was issued for {unit}, which has been removed; "
            "mint a new one for the unit that replaces it"
        )
    if current_uid != bound_uid:
        return (
            f"token {token_id} was issued for an earlier incarnation of {unit} "
            "(the application was removed and re-created); mint a new one"
        )
    return None


def read_bootstrap_token(
    path: str | os.PathLike[str] | None, environ: Mapping[str, str]
) -> str | None:
    """The bootstrap admin token `serve` was given: the file's text, else the
    environment's ``GENCONF_ADMIN_TOKEN``; None when neither is given (no auth).

    A file that cannot be read or is empty, or a variable set to blanks, is an
    error: it means auth was wanted, so it must never quietly turn auth off."""
    if path is not None:
        if not str(path):
            raise InvalidArgument("--admin-token-file needs the name of a file holding the token")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
            raise InvalidArgument(
                f"cannot read the bootstrap admin token from --admin-token-file {path}: {why}"
            ) from None
        return check_bootstrap_token(text, f"--admin-token-file {path}")
    text = environ.get(BOOTSTRAP_ENV)
    if text is None:
        return None
    return check_bootstrap_token(text, f"the environment variable {BOOTSTRAP_ENV}")


def check_bootstrap_token(text: str, source: str = "") -> str:
    """The token in ``text`` (surrounding whitespace dropped), or `InvalidArgument`
    saying what is wrong with it and, given ``source``, where it came from (never
    the token itself)."""
    what = f"the bootstrap admin token (from {source})" if source else "the bootstrap admin token"
    token = text.strip()
    if not token:
        raise InvalidArgument(
            f"{what} is empty: put a token of at least {MIN_BOOTSTRAP_LENGTH} characters "
            f"there ({_GENERATE_HINT}), or give no admin token at all to run without "
            "authentication (loopback only)"
        )
    if len(token) < MIN_BOOTSTRAP_LENGTH:
        raise InvalidArgument(
            f"{what} must be at least {MIN_BOOTSTRAP_LENGTH} characters; {_GENERATE_HINT}"
        )
    if not _HEADER_SAFE_RE.match(token):
        raise InvalidArgument(
            f"{what} holds spaces, control or non-ASCII characters, which cannot travel in "
            f"a gRPC header; {_GENERATE_HINT}"
        )
    return token


def bootstrap_record(plaintext: str) -> TokenRecord:
    """The admin token given to `serve` (file or environment): kept in memory only."""
    plaintext = check_bootstrap_token(plaintext)
    salt = secrets.token_bytes(16)
    return TokenRecord(
        BOOTSTRAP_ID,
        Role.ADMIN,
        None,
        salt,
        digest(salt, plaintext),
        None,
        False,
        name=BOOTSTRAP_NAME,
    )


def authenticate(
    plaintext: str,
    lookup: Mapping[str, TokenRecord],
    bootstrap: TokenRecord | None,
    now: dt.datetime,
) -> Principal:
    """The principal a bearer token stands for, or `Unauthenticated` saying why."""
    # The bootstrap token is whatever the operator chose, so it is checked first
    # (it may even look like a minted token, e.g. one copied from another server).
    if bootstrap is not None and hmac.compare_digest(
        digest(bootstrap.salt, plaintext), bootstrap.hash
    ):
        return Principal(BOOTSTRAP_ID, Role.ADMIN, name=bootstrap.name or BOOTSTRAP_NAME)
    match = TOKEN_RE.match(plaintext)
    if match is None:
        # A mistyped bootstrap token lands here too: say what it may be, not what it is not.
        raise Unauthenticated(
            "invalid or unknown token: it is neither this server's bootstrap admin token "
            "nor a token it minted (gct_...)"
        )
    token_id, secret = match[1], match[2]
    record = lookup.get(token_id)
    if record is None or not hmac.compare_digest(digest(record.salt, secret), record.hash):
        raise Unauthenticated(f"token {token_id} is not valid on this server")
    if record.revoked:
        raise Unauthenticated(f"token {token_id} has been revoked")
    if record.expired(now):
        raise Unauthenticated(
            f"token {token_id} expired at {record.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    return Principal(record.id, record.role, record.unit, record.name, record.unit_uid)


# -- the rule table ----------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """Roles allowed on one RPC; ``unit_field`` binds agent tokens to the request's unit."""

    roles: frozenset[Role]
    unit_field: str | None = None
    public: bool = False  # no token needed (health checks from load balancers)


READ: Final = frozenset({Role.ADMIN, Role.CONTROLLER, Role.OBSERVER})
WRITE: Final = frozenset({Role.ADMIN, Role.CONTROLLER})
ADMIN: Final = frozenset({Role.ADMIN})
ANY: Final = frozenset(Role)


def _service(name: str, **methods: Access) -> dict[str, Access]:
    return {f"/genconf.v1.{name}/{method}": access for method, access in methods.items()}


RULES: Final[Mapping[str, Access]] = {
    **_service(
        "AgentService",
        GetConfig=Access(READ | {Role.AGENT}, unit_field="unit"),
        WatchConfig=Access(READ | {Role.AGENT}, unit_field="unit"),
        ReportApplied=Access(WRITE | {Role.AGENT}, unit_field="unit"),
    ),
    **_service(
        "ControllerService",
        CreateApplication=Access(WRITE),
        UpdateApplication=Access(WRITE),
        RemoveApplication=Access(WRITE),
        GetApplication=Access(READ),
        ListApplications=Access(READ),
        AddUnits=Access(WRITE),
        RemoveUnit=Access(WRITE),
        ListUnits=Access(READ),
        LabelUnit=Access(WRITE),
        SetConfig=Access(WRITE),
        PatchConfig=Access(WRITE),
        AddBranch=Access(WRITE),
        TrackBranch=Access(WRITE),
        UntrackBranch=Access(WRITE),
        SetBranchConfig=Access(WRITE),
        DiffBranch=Access(READ),
        CommitBranch=Access(WRITE),
        AbortBranch=Access(WRITE),
        RebaseBranch=Access(WRITE),
        DropBranchKey=Access(WRITE),
        ListBranches=Access(READ),
        GetBranch=Access(READ),
        GetStatus=Access(READ),
    ),
    **_service(
        "HistoryService",
        ListVersions=Access(READ),
        GetVersion=Access(READ),
        LatestVersion=Access(READ),
        DiffVersions=Access(READ),
        Rollback=Access(WRITE),
        TagVersion=Access(WRITE),
        BumpVersion=Access(WRITE),
        KeyHistory=Access(READ),
        ListGenerations=Access(READ),
        GetGeneration=Access(READ),
        RevertGeneration=Access(WRITE),
    ),
    **_service("AdminService", Snapshot=Access(READ), WatchDeltas=Access(READ)),
    **_service(
        "RolloutService",
        StartRollout=Access(WRITE),
        GetRollout=Access(READ),
        ListRollouts=Access(READ),
        PauseRollout=Access(WRITE),
        ResumeRollout=Access(WRITE),
        AbortRollout=Access(WRITE),
    ),
    **_service(
        "TokenService",
        CreateToken=Access(ADMIN),
        ListTokens=Access(ADMIN),
        RevokeToken=Access(ADMIN),
    ),
    **_service("TransferService", Export=Access(ADMIN), Import=Access(ADMIN)),
    "/grpc.health.v1.Health/Check": Access(ANY, public=True),
    "/grpc.health.v1.Health/List": Access(ANY, public=True),
    "/grpc.health.v1.Health/Watch": Access(ANY, public=True),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Access(ANY),
}


def short_method(method: str) -> str:
    """``/genconf.v1.ControllerService/SetConfig`` -> ``ControllerService/SetConfig``."""
    return method.rsplit(".", 1)[-1] if method.startswith("/genconf.") else method.lstrip("/")


def authorize(principal: Principal, method: str, request: Any = None) -> Access:
    """The rule that lets ``principal`` call ``method``; `PermissionDenied` otherwise.

    With ``request`` None only the role is checked (the unit binding needs the request).
    """
    access = RULES.get(method)
    if access is None:
        raise PermissionDenied(f"{short_method(method)} has no access rule: it is refused to all")
    if principal.role not in access.roles:
        allowed = ", ".join(sorted(r.value for r in access.roles))
        raise PermissionDenied(
            f"role {principal.role.value} may not call {short_method(method)} (allowed: {allowed})"
        )
    if principal.role is Role.AGENT and request is not None and access.unit_field:
        unit = getattr(request, access.unit_field, "")
        if unit != principal.unit:
            raise PermissionDenied(
                f"this agent token is bound to unit {principal.unit}, not {unit!r}"
            )
    return access
