"""`genconf config`: read a unit's or an application's config, and set or unset keys
on master or on a branch, typed by the application's schema."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from genconf import shapes
from genconf.cli import render
from genconf.cli.files import load_values_file, read_text
from genconf.cli.framework import (
    Command,
    Commands,
    Ctx,
    arg,
    assignment,
    expected_version,
    meta,
    metadata_of,
    reason,
    user,
    versions_text,
    written,
)
from genconf.cli.output import show
from genconf.client import Client
from genconf.domain.config import Change, Op, effective_config
from genconf.domain.schema import OptionSpec, parse_schema, parse_text_value, require_key
from genconf.domain.values import ABSENT
from genconf.errors import ClientError, GenconfError, UsageError
from genconf.wire import from_struct, schema_from_proto


async def _schema_of(client: Client, application: str) -> dict[str, OptionSpec]:
    app = await client.get_application(application)
    return parse_schema(schema_from_proto(app.schema))


def typed_values(
    schema: Mapping[str, OptionSpec], pairs: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """``k=v`` strings as the values the schema types them (``port=9090`` -> 9090)."""
    return {key: parse_text_value(key, require_key(schema, key), text) for key, text in pairs}


async def _config_get(ctx: Ctx, args: argparse.Namespace) -> None:
    if args.branch and "/" in args.target:
        raise UsageError(
            f"--branch shows an application's view (genconf config get APP --branch B); "
            f"{args.target} is a unit, which sees the branch it tracks"
        )
    if "/" not in args.target:
        data, rows, header = await _application_config(ctx.client, args)
    else:
        data, rows, header = await _unit_config(ctx, args)
    if args.key is not None:
        _print_value(ctx, args, data["effective" if "effective" in data else "config"])
        return
    ctx.out.emit(data, render.render_config(rows, header))


def _print_value(ctx: Ctx, args: argparse.Namespace, config: Mapping[str, Any]) -> None:
    """One key's value, bare (``etcdctl get --print-value-only``): text as it is,
    anything else as JSON; ``-o json`` prints it as JSON."""
    if args.key not in config:
        raise GenconfError(f"{args.target} has no value for {args.key!r}")
    value = config[args.key]
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    # A text ending in a newline prints exactly as it is (`> file` keeps the value).
    ctx.out.emit(value, lambda out: [text.removesuffix("\n")])


Rows = list[tuple[str, Any, str]]


async def _application_config(
    client: Client, args: argparse.Namespace
) -> tuple[dict[str, Any], Rows, list[tuple[str, str]]]:
    app = await client.get_application(args.target)
    data = shapes.app_config_view(app)
    header = [("application", args.target), ("version", str(data["version"]))]
    if not args.branch:
        rows = [
            (k, v, "master" if k in data["settings"] else "default")
            for k, v in sorted(data["effective"].items())
        ]
        return data, rows, header
    # A branch's view without a tracking unit: the same function the server uses.
    changes_doc = shapes.branch_changes_view(await client.get_branch(args.branch))
    changes = {
        key: Change(Op(c["op"]), ABSENT if c["value"] is None else c["value"])
        for key, c in changes_doc.get(args.target, {}).items()
    }
    schema = parse_schema(schema_from_proto(app.schema))
    effective = effective_config(schema, from_struct(app.settings), changes)
    data = {**data, "branch": args.branch, "effective": shapes.typed(app.schema, effective)}
    header.append(("branch", args.branch))
    rows = [
        (
            k,
            v,
            f"branch {args.branch}"
            if k in changes
            else ("master" if k in data["settings"] else "default"),
        )
        for k, v in sorted(data["effective"].items())
    ]
    return data, rows, header


async def _unit_config(
    ctx: Ctx, args: argparse.Namespace
) -> tuple[dict[str, Any], Rows, list[tuple[str, str]]]:
    client = ctx.client
    config = await client.get_config(args.target)
    data = shapes.config_view(config)
    header = [
        ("unit", args.target),
        ("branch", config.branch or "- (master)"),
        ("app version", str(config.app_version)),
        ("hash", config.hash),
    ]
    if ctx.out.machine or args.key is not None:
        return data, [], header
    try:
        app = await client.get_application(config.application)
        changed: dict[str, Any] = {}
        if config.branch:
            changes = shapes.branch_changes_view(await client.get_branch(config.branch))
            changed = changes.get(config.application, {})
    except ClientError as exc:
        if exc.code != grpc.StatusCode.PERMISSION_DENIED:
            raise
        # An agent's token reads its own unit only: the values, without their sources.
        return data, [(k, v, "-") for k, v in sorted(config.config.items())], header

    def source(key: str) -> str:
        if key in changed:
            return f"branch {config.branch}"
        return "master" if key in app.settings.fields else "default"

    return data, [(k, v, source(k)) for k, v in sorted(config.config.items())], header


def _check_branch_flags(args: argparse.Namespace) -> None:
    if args.branch and (args.expected_version is not None or args.reason or args.meta):
        raise UsageError(
            "--expected-version, --reason and --meta apply to master; a branch records "
            "them when it is committed (genconf branch commit --reason)"
        )
    if args.branch and getattr(args, "replace", False):
        raise UsageError("--replace applies to master; on a branch, set and unset keys")


def _expectations(
    schema: Mapping[str, OptionSpec], args: argparse.Namespace
) -> dict[str, Any] | None:
    """``--expect KEY=VALUE`` (typed by the schema) and ``--expect-absent KEY``."""
    expect: dict[str, Any] = dict(typed_values(schema, args.expect))
    for key in args.expect_absent:
        if key in expect:
            raise UsageError(f"--expect and --expect-absent both name {key!r}")
        expect[key] = ABSENT
    return expect or None


async def _write_config(
    ctx: Ctx,
    args: argparse.Namespace,
    what: str,
    values: Mapping[str, Any] | None = None,
    unset: Sequence[str] = (),
    *,
    expect: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> None:
    """Set ``values`` and unset ``unset`` on master or on ``--branch``; ``what``
    describes the change in the sentence printed."""
    if args.branch:
        w = await ctx.settled(
            await ctx.client.set_branch_config(
                args.branch, args.application, values, unset=unset, expect=expect
            )
        )
        written(ctx, w, f"branch {args.branch}: {args.application} {what}")
        return
    w = await ctx.settled(
        await ctx.client.set_config(
            args.application,
            values,
            unset=unset,
            replace=replace,
            expect=expect,
            expected_version=args.expected_version,
            reason=args.reason or "",
            metadata=metadata_of(args.meta),
            created_by=user(),
        )
    )
    written(ctx, w, f"{args.application}: {what}{versions_text(w)}")


async def _config_set(ctx: Ctx, args: argparse.Namespace) -> None:
    _check_branch_flags(args)
    if not args.values and not args.values_file and not args.replace:
        raise UsageError(
            "give KEY=VALUE pairs, or --values FILE (with --replace: the whole config)"
        )
    blank = [key for key, text in args.values if text == ""]
    if blank and not args.empty:
        raise UsageError(
            f"{blank[0]}= sets {blank[0]!r} to the empty string: pass --empty if you mean "
            f"that, or run genconf config unset {args.application} {blank[0]}"
        )
    schema = await _schema_of(ctx.client, args.application)
    values = load_values_file(args.values_file, args.application) if args.values_file else {}
    values.update(typed_values(schema, args.values))
    expect = _expectations(schema, args)
    if args.replace:
        what = f"replaced the whole config ({len(values)} key(s) set, every other key default)"
    else:
        what = " ".join(f"{k}={show(v)}" for k, v in values.items())
    await _write_config(ctx, args, what, values=values, expect=expect, replace=args.replace)


async def _config_unset(ctx: Ctx, args: argparse.Namespace) -> None:
    _check_branch_flags(args)
    expect = None
    if args.expect or args.expect_absent:
        expect = _expectations(await _schema_of(ctx.client, args.application), args)
    await _write_config(ctx, args, f"unset {' '.join(args.keys)}", unset=args.keys, expect=expect)


async def _config_patch(ctx: Ctx, args: argparse.Namespace) -> None:
    _check_branch_flags(args)
    diff = read_text(args.diff, "diff")
    w = await ctx.settled(
        await ctx.client.patch_config(
            args.application,
            args.key,
            diff,
            branch=args.branch or "",
            expected_version=args.expected_version,
            reason=args.reason or "",
            metadata=metadata_of(args.meta),
            created_by=user(),
        )
    )
    where = f"branch {args.branch}: " if args.branch else ""
    after = "" if args.branch else versions_text(w)
    written(ctx, w, f"{where}{args.application}: patched {args.key}{after}")


# Where a write goes and what guards it, for set, unset and patch.
WRITE_FLAGS = (
    arg("--branch", help="stage the change on this branch instead of master"),
    expected_version("fail (writing nothing) unless the application is at this version"),
    reason("why: recorded in the new version"),
    meta(),
)
# Per-key check-before-update, for set and unset.
EXPECT_FLAGS = (
    arg(
        "--expect",
        action="append",
        type=assignment,
        default=[],
        metavar="KEY=VALUE",
        help="fail (writing nothing) unless KEY holds VALUE now (repeatable)",
    ),
    arg(
        "--expect-absent",
        action="append",
        default=[],
        metavar="KEY",
        help="fail (writing nothing) unless KEY has no value now (repeatable)",
    ),
)


def register(commands: Commands) -> None:
    config = commands.group("config", help="read and write configuration", examples=["get web/0"])
    config.add_all(
        Command(
            "get",
            _config_get,
            "an application's config (APP) or a unit's effective config (APP/N); "
            "with KEY, only that value",
            ["web", "web/0", "web/0 port", "web --branch canary", "web/0 -o json"],
            [
                arg("target", help="APP or APP/N"),
                arg("key", nargs="?", help="print only this key's value, bare"),
                arg("--branch", help="an application's config as units tracking BRANCH see it"),
            ],
        ),
        Command(
            "set",
            _config_set,
            "set keys on master (or on a branch); values are typed by the schema",
            [
                "web port=9090 log-level=debug --reason 'move port'",
                "web workers=8 --expected-version 3",
                "web port=9090 --expect port=8080",
                "web log-level=debug --branch canary",
                """web features='{"search": true}'""",
                "web --values web.yaml",
                "web --values web.yaml --replace --reason 'config as released'",
            ],
            [
                "application",
                arg("values", nargs="*", type=assignment, metavar="KEY=VALUE"),
                arg(
                    "--values",
                    dest="values_file",
                    metavar="FILE",
                    help="values from a YAML/JSON file ({key: value}, {APP: {key: value}} "
                    "or a charm config.yaml with values); - reads stdin",
                ),
                arg(
                    "--replace",
                    action="store_true",
                    help="the values are the whole config: every key not given goes back "
                    "to its default (or away, in an open application)",
                ),
                arg(
                    "--empty",
                    action="store_true",
                    help="allow KEY= (the empty string); without it KEY= is refused",
                ),
                *EXPECT_FLAGS,
                *WRITE_FLAGS,
            ],
            description="Set config keys. Each VALUE is read as the key's schema type: "
            "port=9090 is the int 9090 when the schema says int; object and list values "
            "are JSON; in an open application a VALUE is JSON when it reads as JSON, "
            "else text. --values merges a file (as juju config --file); with --replace "
            "the file (and pairs) become the whole config, in one version. Without "
            "--branch this writes master: a new version.",
        ),
        Command(
            "unset",
            _config_unset,
            "unset keys (back to the charm default) on master or a branch",
            ["web port", "web log-level --branch canary"],
            ["application", arg("keys", nargs="+", metavar="KEY"), *EXPECT_FLAGS, *WRITE_FLAGS],
        ),
        Command(
            "patch",
            _config_patch,
            "change a text value by applying a unified diff",
            [
                "web motd --diff motd.patch",
                "web motd --diff - --branch canary",
            ],
            [
                "application",
                arg("key", help="a key holding a string"),
                arg(
                    "--diff",
                    required=True,
                    metavar="FILE",
                    help="unified diff of the value's text (as version diff --key "
                    "prints); - reads stdin",
                ),
                *WRITE_FLAGS,
            ],
            description="Apply a unified diff to one string value, on master (a new "
            "version) or on --branch. The diff must apply to the value as it is now; "
            "otherwise nothing is written and the failing hunk is named.",
        ),
    )
