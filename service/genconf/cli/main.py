"""The `genconf` command: the server, every controller operation, the admin feed and
a reference unit agent, over the Python client.

Exit codes scripts can rely on: 0 ok; 1 the operation failed (an error from the
server, a local file that cannot be read or used, or `serve` refusing to start:
no authentication on a non-loopback address, or tokens there without TLS or
--insecure-plaintext, an empty admin token; or a client refusing to send a token
in clear off loopback), with
``error: <message>`` on stderr; 2 usage (a bad flag or argument, a malformed
config file).

Adding a command: write ``async def handler(ctx: Ctx, args) -> int | None`` that
uses ``ctx.client`` and prints through ``ctx.out.emit(data, render)`` (data from
`genconf.cli.views`), then register it with ``commands.add(...)`` in a ``_add_*``
function called from `build_parser`. Settings, output format, colour and error
mapping are shared.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio
import grpc
import yaml

from genconf.cli import views
from genconf.cli.history import add_history, add_tokens
from genconf.cli.output import ColorMode, Format, Output, show
from genconf.cli.settings import Settings, resolve
from genconf.client.core import Backoff, Client, WriteResult
from genconf.domain import model
from genconf.errors import ClientError, ConfigFileError, GenconfError, InvalidArgument, UsageError
from genconf.logs import setup_logging
from genconf.wire import schema_from_proto

log = logging.getLogger("genconf")

READY_LINE = "genconf is ready on"


@dataclass
class Ctx:
    """What a command handler gets: settings, output, and a client made on first use."""

    settings: Settings
    out: Output
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            s = self.settings
            self._client = Client(
                s.server, token=s.token, tls_ca=s.tls_ca, insecure_plaintext=s.insecure_plaintext
            )
        return self._client

    async def settled(self, written: WriteResult) -> WriteResult:
        """Return once the server has applied ``written`` to its cache, so the next
        command (another process) reads it: read-your-writes across commands."""
        await self.client.list_branches(min_revision=written.revision)
        return written

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


Handler = Callable[[Ctx, argparse.Namespace], Awaitable[int | None]]


def _user() -> str:
    """Who is writing, as the client says (``created_by``): with authentication on,
    the server records the caller's token instead and keeps this as on_behalf_of."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


# -- parser building blocks ------------------------------------------------------


def _common_options() -> argparse.ArgumentParser:
    """Options every command accepts, before or after the subcommand. Defaults are
    SUPPRESS so a value given before the subcommand is not reset after it; the real
    defaults come from `genconf.cli.settings.resolve`."""
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("connection and output")
    s = argparse.SUPPRESS
    g.add_argument("--server", default=s, help="server host:port (env GENCONF_SERVER)")
    g.add_argument("--token", default=s, help="bearer token sent on every call (GENCONF_TOKEN)")
    g.add_argument("--tls-ca", default=s, help="CA file: connect with TLS (GENCONF_TLS_CA)")
    g.add_argument(
        "--insecure-plaintext",
        action="store_true",
        default=s,
        help="trusted network only: send the token without TLS to a non-loopback server "
        "(GENCONF_INSECURE_PLAINTEXT); for serve, accept tokens without TLS off loopback",
    )
    g.add_argument(
        "-o", "--output", default=s, choices=[f.value for f in Format], help="output format"
    )
    g.add_argument(
        "--color", default=s, choices=[c.value for c in ColorMode], help="colour (auto: on a TTY)"
    )
    g.add_argument("--config", default=s, help="config file (GENCONF_CONFIG)")
    g.add_argument("--log-level", default=s, help="debug, info, warning, error")
    return common


class Commands:
    """Adds subcommands that all take the common options and show examples in --help."""

    def __init__(self, sub: Any, common: argparse.ArgumentParser, prefix: str = "genconf") -> None:
        self.sub = sub
        self.common = common
        self.prefix = prefix

    def add(
        self,
        name: str,
        handler: Handler | None,
        *,
        help: str,
        description: str | None = None,
        examples: Sequence[str] = (),
    ) -> argparse.ArgumentParser:
        epilog = None
        if examples:
            lines = (f"  {self.prefix} {name} {e}".rstrip() for e in examples)
            epilog = "Examples:\n" + "\n".join(lines)
        parser: argparse.ArgumentParser = self.sub.add_parser(
            name,
            help=help,
            description=description or help[0].upper() + help[1:] + ".",
            epilog=epilog,
            parents=[self.common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(func=handler)
        return parser

    def group(
        self, name: str, *, help: str, examples: Sequence[str] = ()
    ) -> tuple[argparse.ArgumentParser, Commands]:
        parser = self.add(name, None, help=help, examples=examples)
        sub = parser.add_subparsers(dest=f"{name}_action", required=True, metavar="ACTION")
        return parser, Commands(sub, self.common, f"{self.prefix} {name}")


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number >= 1, got 0")
    return value


# -- shared helpers ------------------------------------------------------------------


def _written(ctx: Ctx, w: WriteResult, text: str) -> None:
    """A write's result: the WriteResult for machines, one sentence for people."""
    ctx.out.emit(views.write_view(w), lambda out: [text])


def _versions(w: WriteResult) -> str:
    parts = [f"{app} is at version {v}" for app, v in sorted(w.versions.items())]
    if w.generation:
        parts.append(f"generation {w.generation}")
    return f" ({', '.join(parts)})" if parts else ""


async def _schema_of(client: Client, application: str) -> dict[str, model.OptionSpec]:
    app = await client.get_application(application)
    return model.parse_schema(schema_from_proto(app.schema))


def typed_values(
    schema: Mapping[str, model.OptionSpec], pairs: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """``k=v`` strings as the values the schema types them (``port=9090`` -> 9090)."""
    return {
        key: model.parse_text_value(key, model.require_key(schema, key), text)
        for key, text in pairs
    }


def load_schema_file(path: str) -> dict[str, dict[str, Any]]:
    """A charm-style ``config.yaml`` (``options: {key: {type, default, description}}``)
    or the bare mapping, in YAML or JSON, validated and normalised."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GenconfError(f"cannot read schema file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GenconfError(f"schema file {path} is not UTF-8 text") from None
    is_json = path.endswith(".json")
    try:
        raw = json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if is_json else "YAML (or JSON)"
        raise GenconfError(f"schema file {path} is not valid {kind}: {exc}") from None
    raw = raw or {}
    options = raw.get("options") if isinstance(raw, dict) else None
    if isinstance(options, dict) and set(raw) == {"options"}:
        if all(isinstance(v, dict) for v in options.values()):
            raw = options
    try:
        return model.schema_to_doc(model.parse_schema(raw))
    except InvalidArgument as exc:
        raise InvalidArgument(f"schema file {path}: {exc.message}") from None


async def until_stopped(body: Callable[[], Awaitable[int]]) -> int:
    """Run ``body`` until it returns or SIGINT/SIGTERM arrives (then exit 0): for
    commands that follow a stream until the user stops them."""
    result = 0
    failure: Exception | None = None
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:

            async def stop() -> None:
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    return

            async def run() -> None:
                nonlocal result, failure
                try:
                    result = await body()
                except Exception as exc:  # re-raised below, not as an ExceptionGroup
                    failure = exc
                tg.cancel_scope.cancel()

            tg.start_soon(stop)
            tg.start_soon(run)
    if failure is not None:
        raise failure
    return result


# -- serve ------------------------------------------------------------------------------


def _self_command() -> str:
    """How the user can run this same `genconf` (for the hints we print)."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "genconf":
        try:
            relative = Path(os.path.abspath(argv0)).relative_to(Path.cwd())
            return str(relative) if relative.parent != Path(".") else f"./{relative}"
        except ValueError:
            return "genconf"
    return f"{sys.executable} -m genconf.cli.main"


def _admin_token(path: str | None) -> str | None:
    """The bootstrap admin token (never logged); None: no auth. The rules, and the
    refusal of an empty file or variable, live in `auth.read_bootstrap_token`."""
    from genconf.security.auth import read_bootstrap_token

    return read_bootstrap_token(path, os.environ)


async def _serve(ctx: Ctx, args: argparse.Namespace) -> int:
    from genconf.api.server import ServerConfig, serve
    from genconf.readside.multiwatcher import Tuning
    from genconf.readside.supervisor import tune_gc

    setup_logging(getattr(args, "log_level", None) or "info", args.log_format)
    tune_gc()
    config = ServerConfig(
        mongo_uri=args.mongo_uri,
        data_dir=Path(args.data_dir),
        listen=args.listen,
        database=args.database,
        bookmark_interval=args.bookmark_interval,
        tuning=Tuning(),
        retain_versions=args.retain_versions,
        admin_token=_admin_token(args.admin_token_file),
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        tls_client_ca=Path(args.tls_client_ca) if args.tls_client_ca else None,
        # The flag only: a client's environment or config file never loosens a server.
        insecure_plaintext=bool(getattr(args, "insecure_plaintext", False)),
        max_request_bytes=args.max_request_bytes,
        streams_per_token=args.streams_per_token,
        streams_per_peer=args.streams_per_peer,
        max_streams=args.max_streams,
        metrics_listen=args.metrics_listen,
        stale_after=args.stale_after,
        ring_size=args.ring_size,
        feed_buffer=args.feed_buffer,
        ring_bytes=args.ring_bytes,
        feed_bytes=args.feed_bytes,
    )
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve(config) as running:
            with anyio.fail_after(120):
                await running.read.wait_synced()
            if args.demo:
                from genconf.dev import demo

                loaded = await demo.load(running.store)
                print(demo.banner(running.address, loaded, _self_command()), flush=True)
            print(f"{READY_LINE} {running.address}", flush=True)
            async for signum in signals:
                log.info("received %s; shutting down", signal.Signals(signum).name)
                break
    return 0


def _add_serve(commands: Commands) -> None:
    from genconf.defaults import (
        DEFAULT_BOOKMARK_INTERVAL,
        DEFAULT_FEED_BUFFER,
        DEFAULT_FEED_BYTES,
        DEFAULT_LISTEN,
        DEFAULT_MAX_REQUEST_BYTES,
        DEFAULT_MAX_STREAMS,
        DEFAULT_RING_BYTES,
        DEFAULT_RING_SIZE,
        DEFAULT_STALE_AFTER,
        DEFAULT_STREAMS_PER_PEER,
        DEFAULT_STREAMS_PER_TOKEN,
    )

    p = commands.add(
        "serve",
        _serve,
        help="run the server",
        description="Run a genconf server. Without --mongo-uri it starts an embedded "
        "MongoDB replica set in --data-dir and stops it on exit.",
        examples=[
            "",
            "--mongo-uri 'mongodb://db1,db2,db3/?replicaSet=rs0'",
            "--demo --listen 127.0.0.1:50052 --data-dir /tmp/genconf-demo",
        ],
    )
    p.add_argument("--mongo-uri", default=None, help="a MongoDB 6.0+ replica set URI")
    p.add_argument("--data-dir", default=".genconf-data", help="embedded MongoDB's data")
    p.add_argument("--listen", default=DEFAULT_LISTEN, help="host:port to serve gRPC on")
    p.add_argument("--database", default="genconf", help="the model's database name")
    p.add_argument(
        "--bookmark-interval",
        type=float,
        default=DEFAULT_BOOKMARK_INTERVAL,
        help="seconds between watch bookmarks",
    )
    p.add_argument("--demo", action="store_true", help="load a small demo model on first run")
    p.add_argument(
        "--retain-versions",
        type=int,
        default=None,
        metavar="N",
        help="keep the newest N versions per application (labelled ones always); default: all",
    )
    sec = p.add_argument_group("security (authentication is on when an admin token is given)")
    sec.add_argument(
        "--admin-token-file",
        default=None,
        metavar="FILE",
        help="file holding the bootstrap admin token (or env GENCONF_ADMIN_TOKEN)",
    )
    sec.add_argument("--tls-cert", default=None, metavar="PEM", help="server certificate")
    sec.add_argument("--tls-key", default=None, metavar="PEM", help="server private key")
    sec.add_argument(
        "--tls-client-ca", default=None, metavar="PEM", help="require client certificates from it"
    )
    sec.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help="largest request accepted",
    )
    sec.add_argument(
        "--streams-per-token",
        type=int,
        default=DEFAULT_STREAMS_PER_TOKEN,
        help="open streams allowed per token",
    )
    sec.add_argument(
        "--streams-per-peer",
        type=int,
        default=DEFAULT_STREAMS_PER_PEER,
        help="open streams not bound to a token (health watches, reflection, every stream "
        "without authentication) allowed per client IP address",
    )
    sec.add_argument(
        "--max-streams",
        type=int,
        default=DEFAULT_MAX_STREAMS,
        help="open streams of any kind allowed in all",
    )
    ops = p.add_argument_group("operations")
    ops.add_argument(
        "--metrics-listen", default=None, metavar="HOST:PORT", help="serve Prometheus /metrics"
    )
    ops.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="json: one object per line"
    )
    ops.add_argument(
        "--stale-after",
        type=float,
        default=DEFAULT_STALE_AFTER,
        metavar="SECONDS",
        help="report NOT_SERVING (whole-server health) after this long without the change stream",
    )
    ops.add_argument(
        "--ring-size",
        type=_non_negative,
        default=DEFAULT_RING_SIZE,
        metavar="DELTAS",
        help="recent changes kept so an admin feed can resume from a revision (memory: ~KB each)",
    )
    ops.add_argument(
        "--feed-buffer",
        type=_positive,
        default=DEFAULT_FEED_BUFFER,
        metavar="BATCHES",
        help="an admin feed this many batches behind its reader ends RESOURCE_EXHAUSTED "
        "(the reader resumes from its last revision)",
    )
    ops.add_argument(
        "--ring-bytes",
        type=_positive,
        default=DEFAULT_RING_BYTES,
        metavar="BYTES",
        help="at most this many (estimated) bytes of recent changes kept for resume",
    )
    ops.add_argument(
        "--feed-bytes",
        type=_positive,
        default=DEFAULT_FEED_BYTES,
        metavar="BYTES",
        help="like --feed-buffer, in (estimated) bytes of changes waiting for the reader",
    )


# -- app -----------------------------------------------------------------------------------


async def _app_create(ctx: Ctx, args: argparse.Namespace) -> None:
    schema = load_schema_file(args.schema) if args.schema else None
    w = await ctx.settled(
        await ctx.client.create_application(
            args.name, charm=args.charm, schema=schema, units=args.units, created_by=_user()
        )
    )
    units = f", units {', '.join(w.units)}" if w.units else ", no units"
    _written(ctx, w, f"created application {args.name}{units}")


async def _app_show(ctx: Ctx, args: argparse.Namespace) -> None:
    app = views.application_view(await ctx.client.get_application(args.name))
    ctx.out.emit(app, views.render_application(app))


async def _app_list(ctx: Ctx, args: argparse.Namespace) -> None:
    apps = [views.application_view(a) for a in await ctx.client.list_applications()]
    ctx.out.emit(apps, views.render_applications(apps))


async def _app_remove(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.remove_application(args.name))
    _written(ctx, w, f"removed application {args.name}")


async def _app_set_charm(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.update_application(args.name, charm=args.charm))
    _written(ctx, w, f"application {args.name} now uses charm {args.charm}")


def _add_app(commands: Commands) -> None:
    _, app = commands.group(
        "app", help="applications: create, show, list, remove, set-charm", examples=["list"]
    )
    p = app.add(
        "create",
        _app_create,
        help="create an application, with a config schema and units",
        description="Create an application. --schema reads a charm-style config.yaml "
        "(options: {key: {type, default, description}}), in YAML or JSON; types are "
        "string, int, float, boolean, object, list.",
        examples=["web --schema config.yaml --units 3", "db --charm postgres --units 2"],
    )
    p.add_argument("name", help="application name (lowercase letters, digits, '-')")
    p.add_argument("--charm", default="", help="charm name (default: the application's name)")
    p.add_argument("--schema", help="schema file: a charm-style config.yaml, or JSON")
    p.add_argument("--units", type=_non_negative, default=0, help="number of units to add")
    p = app.add("show", _app_show, help="an application's schema and values", examples=["web"])
    p.add_argument("name")
    app.add("list", _app_list, help="every application", examples=["", "-o json"])
    p = app.add("remove", _app_remove, help="remove an application and its units", examples=["web"])
    p.add_argument("name")
    p = app.add(
        "set-charm", _app_set_charm, help="change an application's charm", examples=["web web-v2"]
    )
    p.add_argument("name")
    p.add_argument("charm")


# -- unit ------------------------------------------------------------------------------------


async def _unit_add(ctx: Ctx, args: argparse.Namespace) -> None:
    count = args.count if args.count is not None else (0 if args.name else 1)
    w = await ctx.settled(
        await ctx.client.add_units(args.application, count=count, names=args.name or ())
    )
    _written(ctx, w, f"added {', '.join(w.units) or 'no units'}")


async def _unit_remove(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.remove_unit(args.unit))
    _written(ctx, w, f"removed unit {args.unit}")


async def _unit_list(ctx: Ctx, args: argparse.Namespace) -> None:
    units = [views.unit_view(u) for u in await ctx.client.list_units(args.application or "")]
    ctx.out.emit(units, views.render_units(units))


def _add_unit(commands: Commands) -> None:
    _, unit = commands.group("unit", help="units: add, remove, list", examples=["list web"])
    p = unit.add(
        "add",
        _unit_add,
        help="add units to an application (one unless --count or --name)",
        examples=["web", "web --count 3", "web --name web/7"],
    )
    p.add_argument("application")
    p.add_argument("--count", type=_non_negative, help="how many units to add")
    p.add_argument("--name", action="append", help="a unit name to add (repeatable)")
    p = unit.add("remove", _unit_remove, help="remove a unit", examples=["web/2"])
    p.add_argument("unit", help="APP/N")
    p = unit.add(
        "list",
        _unit_list,
        help="units with their branch and last applied report",
        examples=["", "web"],
    )
    p.add_argument("application", nargs="?", help="only this application's units")


# -- config ----------------------------------------------------------------------------------


async def _config_get(ctx: Ctx, args: argparse.Namespace) -> None:
    client = ctx.client
    if "/" not in args.target:
        app = await client.get_application(args.target)
        data = views.app_config_view(app)
        header = [("application", args.target), ("version", str(data["version"]))]
        rows = [
            (k, v, "master" if k in data["settings"] else "default")
            for k, v in sorted(data["effective"].items())
        ]
        ctx.out.emit(data, views.render_config(rows, header))
        return
    config = await client.get_config(args.target)
    data = views.config_view(config)
    if ctx.out.machine:
        ctx.out.emit(data)
        return
    app = await client.get_application(config.application)
    changed: dict[str, Any] = {}
    if config.branch:
        changes = views.branch_changes_view(await client.get_branch(config.branch))
        changed = changes.get(config.application, {})

    def source(key: str) -> str:
        if key in changed:
            return f"branch {config.branch}"
        return "master" if key in app.settings.fields else "default"

    header = [
        ("unit", args.target),
        ("branch", config.branch or "- (master)"),
        ("app version", str(config.app_version)),
        ("hash", config.hash),
    ]
    rows = [(k, v, source(k)) for k, v in sorted(config.config.items())]
    ctx.out.emit(data, views.render_config(rows, header))


def _check_branch_flags(args: argparse.Namespace) -> None:
    if args.branch and (args.expected_version is not None or args.reason):
        raise UsageError(
            "--expected-version and --reason apply to master; a branch records them "
            "when it is committed (genconf branch commit --reason)"
        )


async def _write_config(
    ctx: Ctx,
    args: argparse.Namespace,
    what: str,
    values: Mapping[str, Any] | None = None,
    unset: Sequence[str] = (),
) -> None:
    """Set ``values`` and unset ``unset`` on master or on ``--branch``; ``what``
    describes the change in the sentence printed."""
    if args.branch:
        w = await ctx.settled(
            await ctx.client.set_branch_config(args.branch, args.application, values, unset=unset)
        )
        _written(ctx, w, f"branch {args.branch}: {args.application} {what}")
        return
    w = await ctx.settled(
        await ctx.client.set_config(
            args.application,
            values,
            unset=unset,
            expected_version=args.expected_version,
            reason=args.reason or "",
            created_by=_user(),
        )
    )
    _written(ctx, w, f"{args.application}: {what}{_versions(w)}")


async def _config_set(ctx: Ctx, args: argparse.Namespace) -> None:
    _check_branch_flags(args)
    values = typed_values(await _schema_of(ctx.client, args.application), args.values)
    what = " ".join(f"{k}={show(v)}" for k, v in values.items())
    await _write_config(ctx, args, what, values=values)


async def _config_unset(ctx: Ctx, args: argparse.Namespace) -> None:
    _check_branch_flags(args)
    await _write_config(ctx, args, f"unset {' '.join(args.keys)}", unset=args.keys)


def _add_write_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--branch", help="stage the change on this branch instead of master")
    p.add_argument(
        "--expected-version",
        type=int,
        help="fail (writing nothing) unless the application is at this version",
    )
    p.add_argument("--reason", help="why: recorded in the new version")


def _add_config(commands: Commands) -> None:
    _, config = commands.group(
        "config", help="read and write configuration", examples=["get web/0"]
    )
    p = config.add(
        "get",
        _config_get,
        help="an application's config (APP) or a unit's effective config (APP/N)",
        examples=["web", "web/0", "web/0 -o json"],
    )
    p.add_argument("target", help="APP or APP/N")
    p = config.add(
        "set",
        _config_set,
        help="set keys on master (or on a branch); values are typed by the schema",
        description="Set config keys. Each VALUE is read as the key's schema type: "
        "port=9090 is the int 9090 when the schema says int; object and list values "
        "are JSON. Without --branch this writes master: a new version.",
        examples=[
            "web port=9090 log-level=debug --reason 'move port'",
            "web workers=8 --expected-version 3",
            "web log-level=debug --branch canary",
            """web features='{"search": true}'""",
        ],
    )
    p.add_argument("application")
    p.add_argument("values", nargs="+", type=_assignment, metavar="KEY=VALUE")
    _add_write_flags(p)
    p = config.add(
        "unset",
        _config_unset,
        help="unset keys (back to the charm default) on master or a branch",
        examples=["web port", "web log-level --branch canary"],
    )
    p.add_argument("application")
    p.add_argument("keys", nargs="+", metavar="KEY")
    _add_write_flags(p)


# -- branch -----------------------------------------------------------------------------------


async def _branch_add(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.add_branch(args.name, created_by=_user()))
    _written(ctx, w, f"added branch {args.name}")


def _tracking_args(args: argparse.Namespace) -> str:
    parts = [*args.units, *(f"{a}/* (every unit, now and later)" for a in args.app or ())]
    if getattr(args, "count", None):
        parts.append(f"{args.count} unit(s) of {args.of}")
    return ", ".join(parts)


async def _branch_track(ctx: Ctx, args: argparse.Namespace) -> None:
    if bool(args.count) != bool(args.of):
        raise UsageError("--count and --of go together: --count N --of APP")
    if not (args.units or args.app or args.count):
        raise UsageError("name the units to track: UNIT..., --app APP or --count N --of APP")
    w = await ctx.settled(
        await ctx.client.track_branch(
            args.name,
            units=args.units,
            applications=args.app or (),
            count=args.count or 0,
            application=args.of or "",
        )
    )
    tracking = ", ".join(w.units) or _tracking_args(args)
    verb = "tracks" if len(w.units) == 1 else "track"
    _written(ctx, w, f"{tracking} now {verb} branch {args.name}")


async def _branch_untrack(ctx: Ctx, args: argparse.Namespace) -> None:
    if not (args.units or args.app):
        raise UsageError("name the units to untrack: UNIT... or --app APP")
    w = await ctx.settled(
        await ctx.client.untrack_branch(args.name, units=args.units, applications=args.app or ())
    )
    untracked = ", ".join(w.units) or _tracking_args(args)
    _written(ctx, w, f"{untracked} left branch {args.name}, back on master")


async def _branch_diff(ctx: Ctx, args: argparse.Namespace) -> None:
    d = views.diff_view(await ctx.client.diff_branch(args.name))
    ctx.out.emit(d, views.render_diff(d))


async def _branch_commit(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(
        await ctx.client.commit_branch(
            args.name,
            force=args.force,
            require_applied=args.require_applied,
            reason=args.reason or "",
            created_by=_user(),
        )
    )
    _written(ctx, w, f"committed branch {args.name}{_versions(w)}")


async def _branch_abort(ctx: Ctx, args: argparse.Namespace) -> None:
    w = await ctx.settled(await ctx.client.abort_branch(args.name, force=args.force))
    _written(ctx, w, f"aborted branch {args.name}")


async def _branch_list(ctx: Ctx, args: argparse.Namespace) -> None:
    branches = [views.branch_view(b) for b in await ctx.client.list_branches()]
    ctx.out.emit(branches, views.render_branches(branches))


async def _branch_show(ctx: Ctx, args: argparse.Namespace) -> None:
    branch = views.branch_view(await ctx.client.get_branch(args.name))
    ctx.out.emit(branch, views.render_branch(branch))


def _add_branch(commands: Commands) -> None:
    _, branch = commands.group(
        "branch",
        help="branches: stage changes for some units, then commit or abort",
        examples=["list", "diff canary"],
    )
    p = branch.add("add", _branch_add, help="start a branch", examples=["canary"])
    p.add_argument("name")
    p = branch.add(
        "track",
        _branch_track,
        help="make units see a branch's changes",
        examples=["canary web/0", "canary --app web", "canary --count 2 --of web"],
    )
    p.add_argument("name")
    p.add_argument("units", nargs="*", metavar="UNIT", help="units (APP/N)")
    p.add_argument("--app", action="append", help="every unit of APP, also later ones")
    p.add_argument("--count", type=_non_negative, help="with --of: this many units of APP")
    p.add_argument("--of", metavar="APP", help="the application --count picks units from")
    p = branch.add(
        "untrack",
        _branch_untrack,
        help="put units back on master",
        examples=["canary web/0", "canary --app web"],
    )
    p.add_argument("name")
    p.add_argument("units", nargs="*", metavar="UNIT")
    p.add_argument("--app", action="append", help="stop tracking the whole application")
    p = branch.add(
        "diff",
        _branch_diff,
        help="what a branch changes, and what a commit would conflict on",
        examples=["canary"],
    )
    p.add_argument("name")
    p = branch.add(
        "commit",
        _branch_commit,
        help="apply a branch's changes to master for every unit",
        description="Commit a branch: its changes become master in one transaction, "
        "each touched application gets a new version. Refused when master changed "
        "under the branch (every conflicting key is listed) unless --force.",
        examples=["canary --reason 'debug logging everywhere'", "canary --force"],
    )
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="overwrite conflicts (last write wins)")
    p.add_argument(
        "--require-applied",
        action="store_true",
        help="refuse unless every tracking unit reported the branch's config applied and ok",
    )
    p.add_argument("--reason", help="why: recorded in the new versions")
    p = branch.add(
        "abort",
        _branch_abort,
        help="drop a branch (refused while units track it, unless --force)",
        examples=["canary", "canary --force"],
    )
    p.add_argument("name")
    p.add_argument("--force", action="store_true", help="abort; tracking units go back to master")
    branch.add("list", _branch_list, help="active branches", examples=["", "-o yaml"])
    p = branch.add("show", _branch_show, help="a branch's changes and units", examples=["canary"])
    p.add_argument("name")


# -- watch ------------------------------------------------------------------------------------


WATCH_GAP_HINT = (
    "hint: a server replays only the changes it still holds (the last --ring-size, none "
    "from before it started); `genconf generations` lists every committed change, and "
    "`genconf watch` without --since follows from now"
)


async def _watch(ctx: Ctx, args: argparse.Namespace) -> int:
    client, out = ctx.client, ctx.out
    seen = 0
    since: int | None = args.since

    async def follow() -> int:
        nonlocal seen, since
        # No server at all is an error (exit 1); reconnecting is for a server that
        # goes away while we watch.
        await client.health()
        delays = client.backoff.delays()
        reconnecting = False
        while True:
            try:
                if reconnecting and (status := await client.health()) != "SERVING":
                    # A restarted server answers before its cache has synced: resuming
                    # from it then would be refused (a revision ahead of it).
                    print(f"genconf watch: the server is {status}; waiting", file=sys.stderr)
                    await anyio.sleep(next(delays))
                    continue
                async for batch in client.watch_deltas(
                    since_revision=since, kinds=args.kind or (), applications=args.app or ()
                ):
                    delays = client.backoff.delays()
                    for delta in batch.deltas:
                        d = views.delta_view(batch.revision, delta)
                        out.emit_item(d, views.delta_line(out, d))
                        seen += 1
                        if args.count and seen >= args.count:
                            return 0
                    since = batch.revision
                return 0
            except ClientError as exc:
                if exc.code == grpc.StatusCode.OUT_OF_RANGE and since is not None:
                    raise GenconfError(f"{exc.message}\n{WATCH_GAP_HINT}") from None
                # FeedTooSlow: our reader (say, a slow pipe) fell --feed-buffer batches
                # behind; the server ended the feed, and we resume like after a drop.
                slow = exc.detail.code == "FeedTooSlow"
                if exc.code != grpc.StatusCode.UNAVAILABLE and not slow:
                    raise
                # Resume after the last revision printed; if the server no longer
                # holds it, OUT_OF_RANGE ends the watch with a message.
                print(f"genconf watch: {exc.message}; reconnecting", file=sys.stderr)
                reconnecting = True
                await anyio.sleep(next(delays))

    return await until_stopped(follow)


def _add_watch(commands: Commands) -> None:
    p = commands.add(
        "watch",
        _watch,
        help="follow every change to the model (the admin feed), one line per delta",
        description="Print every delta of the model as it happens: one line per delta, "
        "starting with its revision. --since REV replays what followed REV first (a "
        "watch that stopped resumes with the last revision it printed). When the "
        "server goes away it reconnects and resumes the same way; if the server no "
        "longer holds that revision (say it restarted), it exits 1 rather than skip "
        "changes. -o json prints JSON Lines. Ctrl-C stops it (exit 0).",
        examples=["", "--since 7301946349218856961", "--kind unit --app web -o json"],
    )
    p.add_argument("--since", type=int, help="replay the deltas after this revision first")
    p.add_argument(
        "--kind",
        action="append",
        choices=["application", "unit", "branch", "generation"],
        help="only this kind (repeatable)",
    )
    p.add_argument("--app", action="append", help="only this application (repeatable)")
    p.add_argument("--count", type=_non_negative, help="exit after this many deltas")


# -- agent ------------------------------------------------------------------------------------


async def _agent(ctx: Ctx, args: argparse.Namespace) -> int:
    from genconf.agent.runner import AgentOptions, FileFormat, run_agent, wants_live_status

    path = Path(args.write)
    if not path.parent.is_dir():
        raise GenconfError(f"cannot write {path}: directory {path.parent} does not exist")
    options = AgentOptions(
        unit=args.unit,
        path=path,
        format=FileFormat(args.format) if args.format else FileFormat.for_path(path),
        command=args.exec,
        exec_timeout=args.exec_timeout,
    )
    live = wants_live_status(sys.stderr)
    s = ctx.settings
    backoff = Backoff(initial=min(0.1, args.max_backoff), maximum=args.max_backoff)
    async with Client(
        s.server,
        token=s.token,
        tls_ca=s.tls_ca,
        insecure_plaintext=s.insecure_plaintext,
        backoff=backoff,
    ) as client:
        return await run_agent(client, options, live=live)


def _add_agent(commands: Commands) -> None:
    p = commands.add(
        "agent",
        _agent,
        help="a reference unit agent: keep a file in sync with a unit's config",
        description="Watch a unit's effective config and write it to PATH on every "
        "change (atomically: temp file + rename, mode 0600), run CMD after each "
        "write (with GENCONF_UNIT, GENCONF_FILE, GENCONF_HASH, GENCONF_BRANCH and "
        "GENCONF_APP_VERSION set) and report applied ok or failed (exit code and "
        "stderr tail) to the server. Survives server restarts; a restarted agent "
        "resumes from the config the file holds. Stops on Ctrl-C or SIGTERM.",
        examples=[
            "--unit web/0 --write /etc/web/config.json",
            "--unit web/0 --write web.env --format env --exec 'systemctl reload web'",
        ],
    )
    p.add_argument("--unit", required=True, help="the unit, APP/N")
    p.add_argument("--write", required=True, metavar="PATH", help="the file to keep current")
    p.add_argument(
        "--format",
        choices=["json", "yaml", "env"],
        help="file format (default: from PATH's suffix, else json)",
    )
    p.add_argument("--exec", metavar="CMD", help="shell command to run after each write")
    p.add_argument("--exec-timeout", type=float, default=300.0, help="seconds before CMD is killed")
    p.add_argument(
        "--max-backoff",
        type=float,
        default=5.0,
        help="longest wait in seconds between reconnects (jittered, doubling from 0.1)",
    )


# -- bench (owned by genconf.bench) ------------------------------------------------------------


def bench_workloads() -> list[str]:
    from genconf.bench import WORKLOADS

    return list(WORKLOADS)


# What each workload measures, for `genconf bench --help` (its own --help has the rest).
BENCH_SUMMARIES: Final = {
    "ingest": "change events applied to the model cache per second, vs a raw change stream",
    "fanout": "one change to S watching agents: time until the last has it",
    "targeted": "commit-to-notified latency of one-unit changes at a steady rate",
    "read": "GetConfig throughput, vs an empty unary handler",
    "idle": "server memory per idle stream and CPU with bookmarks on",
    "storm": "S agents reconnecting at once: time until all have their config",
    "soak": "writes, branches and agent churn for N minutes: memory, then a full check",
}
BENCH_EXAMPLES: Final = (
    "ingest --events 20000",
    "fanout --streams 1000 -o json",
    "targeted --rate 50 --duration 10 --check",
    "soak --minutes 10",
    "storm --help",
)


def _add_bench(sub: Any) -> None:
    """`bench` hands everything after WORKLOAD to that workload's own parser, so it
    takes none of the common options; its help lists the workloads instead."""
    workloads = sorted(bench_workloads())
    width = max(len(w) for w in workloads)
    listing = "\n".join(f"  {w.ljust(width)}  {BENCH_SUMMARIES.get(w, '')}" for w in workloads)
    examples = "\n".join(f"  genconf bench {e}" for e in BENCH_EXAMPLES)
    b = sub.add_parser(
        "bench",
        help="benchmarks (figures with a same-run baseline)",
        description="Run one benchmark. Each prints its figures next to a baseline measured\n"
        "in the same run, and their ratio; --check exits 1 when a target is missed.\n"
        "Without --mongo-uri it starts an embedded MongoDB.\n\nWorkloads:\n" + listing,
        epilog="Examples:\n" + examples + "\n\n`genconf bench WORKLOAD --help` shows a "
        "workload's own options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("workload", choices=workloads, metavar="WORKLOAD", help="what to measure")
    b.add_argument(
        "rest", nargs=argparse.REMAINDER, metavar="ARGS", help="the workload's own options"
    )
    b.set_defaults(func=None)


# -- the parser and main -------------------------------------------------------------------------

EXAMPLES = """\
Examples:
  genconf app create web --schema config.yaml --units 3
  genconf config set web port=9090 --reason 'new port'
  genconf branch add canary && genconf branch track canary web/0
  genconf config set web log-level=debug --branch canary
  genconf branch diff canary && genconf branch commit canary
  genconf agent --unit web/0 --write /tmp/web-0.json --exec 'echo reload'
  genconf watch -o json

Settings: --server/--token/--tls-ca, else GENCONF_SERVER/GENCONF_TOKEN/
GENCONF_TLS_CA, else the config file (~/.config/genconf/config.yaml).
Exit codes: 0 ok, 1 the operation failed (message on stderr), 2 usage.
"""


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="genconf",
        description="Configuration service for fleets of application units.",
        epilog=EXAMPLES,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = Commands(sub, common)
    _add_serve(commands)
    _add_app(commands)
    _add_unit(commands)
    _add_config(commands)
    _add_branch(commands)
    add_history(commands, _user())
    add_tokens(commands)
    _add_watch(commands)
    _add_agent(commands)
    _add_bench(sub)
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ("server", "token", "tls_ca", "output", "config", "insecure_plaintext")
    return {name: getattr(args, name, None) for name in names}


async def _run(handler: Handler, ctx: Ctx, args: argparse.Namespace) -> int:
    try:
        return int(await handler(ctx, args) or 0)
    finally:
        await ctx.aclose()


def _fail(message: str, code: int) -> int:
    prefix = "error: " if code == 1 else "genconf: error: "
    print(prefix + message, file=sys.stderr)
    return code


def _single(exc: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _exit_code(exc: BaseException, settings: Settings) -> int | None:
    """The exit code for an exception a command ended with; None: not ours to map."""
    if isinstance(exc, UsageError):
        return _fail(str(exc), 2)
    if isinstance(exc, ClientError):
        code = _fail(exc.message or exc.code.name, 1)
        if exc.code == grpc.StatusCode.UNAVAILABLE:
            print(
                f"hint: is a genconf server running at {settings.server}? "
                "(--server, GENCONF_SERVER)",
                file=sys.stderr,
            )
        return code
    if isinstance(exc, GenconfError):
        return _fail(exc.message, 1)
    if isinstance(exc, KeyboardInterrupt):
        return 130
    if isinstance(exc, BrokenPipeError):
        # The reader went away (`genconf watch | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:  # as basicConfig did: a configured root stays
        setup_logging(getattr(args, "log_level", None) or "info")
    if args.command == "bench":
        from genconf import bench

        return bench.main(args.workload, args.rest)
    try:
        settings = resolve(_flags(args))
    except ConfigFileError as exc:
        return _fail(str(exc), 2)
    out = Output.for_stream(settings.output, ColorMode(getattr(args, "color", None) or "auto"))
    ctx = Ctx(settings, out)
    try:
        return int(anyio.run(_run, args.func, ctx, args))
    except BaseException as exc:
        code = _exit_code(_single(exc), settings)
        if code is None:
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
