"""Container entrypoint: run `genconf`, with what a container can only give through
its environment and its volumes.

- ``serve`` without --mongo-uri takes it from GENCONF_MONGO_URI. An exec-form CMD
  cannot put an environment variable into an argument without a shell, and the
  image has no embedded MongoDB, so a bare `serve` must be told where the replica
  set is. An explicit --mongo-uri always wins.
- ``agent`` (the first argument) takes each option it is not given from the
  environment: every `genconf agent` option --NAME-OF-IT from GENCONF_NAME_OF_IT
  (GENCONF_UNIT, GENCONF_WRITE, GENCONF_EXEC, GENCONF_FORMAT, ...). The unit may
  come from a name instead (GENCONF_UNIT_FROM, given by the Kubernetes downward
  API): a StatefulSet pod name ``web-2`` is unit ``web/2`` (GENCONF_APP names
  another application), or any name is looked up in GENCONF_UNIT_DIR (a ConfigMap
  mounted as files NAME holding APP/N, e.g. one per node for a DaemonSet). The
  token may come from a file: GENCONF_TOKEN_FILE, or GENCONF_TOKEN_DIR/APP-N (a
  Secret with one key per unit), so it is never written into a manifest; it is
  handed to genconf in this process, so it shows neither in the process's command
  line nor in the environment of the agent's --exec commands.

Everything else is `genconf` as is (same arguments, same exit codes), run in this
process so that it is PID 1 and gets SIGTERM directly. A setting the environment
cannot make sense of stops here with exit code 2, like a bad flag.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from genconf.cli.framework import common_options
from genconf.cli.main import build_parser, main
from genconf.domain.names import parse_unit_name
from genconf.errors import InvalidArgument

ENV_MONGO_URI: Final = "GENCONF_MONGO_URI"
ENV_UNIT_FROM: Final = "GENCONF_UNIT_FROM"
ENV_UNIT_DIR: Final = "GENCONF_UNIT_DIR"
ENV_APP: Final = "GENCONF_APP"
ENV_TOKEN: Final = "GENCONF_TOKEN"
ENV_TOKEN_FILE: Final = "GENCONF_TOKEN_FILE"
ENV_TOKEN_DIR: Final = "GENCONF_TOKEN_DIR"
# A StatefulSet's pod NAME-ORDINAL (web-0): the unit is NAME/ORDINAL.
ORDINAL_NAME: Final = re.compile(r"(?P<app>[a-z][a-z0-9-]*)-(?P<number>0|[1-9][0-9]*)")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})


class EntrypointError(Exception):
    """A setting of the container that cannot work: printed as genconf prints usage errors."""


def with_mongo_uri(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """``argv`` for `genconf`, plus ``--mongo-uri $GENCONF_MONGO_URI`` for a `serve` without one."""
    args = build_parser().parse_args(argv)  # --help, bad flags: exit here as genconf would
    if args.command != "serve" or getattr(args, "mongo_uri", None):
        return list(argv)
    uri = environ.get(ENV_MONGO_URI, "").strip()
    if not uri:
        print(
            f"genconf: error: set {ENV_MONGO_URI} or pass --mongo-uri "
            "mongodb://HOST:PORT,.../?replicaSet=NAME (this image has no embedded MongoDB)",
            file=sys.stderr,
        )
        raise SystemExit(2)  # a usage error, like a bad flag
    return [*argv, "--mongo-uri", uri]  # serve is the last subcommand: its flags may follow


def env_name(option: str) -> str:
    """The environment variable of a `genconf agent` option: --exec-timeout is
    GENCONF_EXEC_TIMEOUT."""
    return "GENCONF_" + option.lstrip("-").replace("-", "_").upper()


def agent_options() -> dict[str, argparse.Action]:
    """`genconf agent`'s own options by their long name (the connection options
    --server, --token, --tls-ca, ... are left out: genconf reads GENCONF_SERVER and
    the others from the environment itself)."""
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    agent = commands.choices["agent"]
    shared = {o for a in common_options()._actions for o in a.option_strings}
    options = {}
    for action in agent._actions:
        names = [o for o in action.option_strings if o.startswith("--")]
        if names and "--help" not in names and not shared.intersection(names):
            options[max(names, key=len)] = action
    return options


def unit_of(environ: Mapping[str, str]) -> str | None:
    """The unit named by the environment: GENCONF_UNIT, else from GENCONF_UNIT_FROM
    (looked up in GENCONF_UNIT_DIR when set, else a StatefulSet pod name); None
    when neither is set."""
    unit = environ.get("GENCONF_UNIT", "").strip()
    source = f"GENCONF_UNIT={unit}"
    if not unit:
        name = environ.get(ENV_UNIT_FROM, "").strip()
        if not name:
            return None
        unit_dir = environ.get(ENV_UNIT_DIR, "").strip()
        if unit_dir:
            entry = Path(unit_dir) / name
            try:
                unit = entry.read_text().strip()
            except OSError as exc:
                raise EntrypointError(
                    f"no unit for {name!r} in {ENV_UNIT_DIR}={unit_dir}: cannot read {entry} "
                    f"({exc.strerror}); add a key {name} holding APP/N to what is mounted there"
                ) from None
            source = f"{entry} (for {ENV_UNIT_FROM}={name})"
        else:
            match = ORDINAL_NAME.fullmatch(name)
            if match is None:
                raise EntrypointError(
                    f"cannot take a unit from {ENV_UNIT_FROM}={name}: a StatefulSet pod name "
                    f"ends in -N (web-0 is unit web/0); otherwise set GENCONF_UNIT=APP/N, or "
                    f"{ENV_UNIT_DIR} to a directory of files NAME holding APP/N"
                )
            app = environ.get(ENV_APP, "").strip()
            unit = f"{app or match['app']}/{int(match['number'])}"
            source = f"{ENV_UNIT_FROM}={name}" + (f" and {ENV_APP}={app}" if app else "")
    try:
        parse_unit_name(unit)
    except InvalidArgument as exc:
        raise EntrypointError(f"{exc.message} (from {source})") from None
    return unit


def token_for(unit: str, environ: Mapping[str, str]) -> str | None:
    """The token from GENCONF_TOKEN_FILE, or GENCONF_TOKEN_DIR/APP-N; None when
    neither is set."""
    token_file = environ.get(ENV_TOKEN_FILE, "").strip()
    token_dir = environ.get(ENV_TOKEN_DIR, "").strip()
    if token_file:
        path, setting = Path(token_file), f"{ENV_TOKEN_FILE}={token_file}"
    elif token_dir:
        key = unit.replace("/", "-")
        path, setting = Path(token_dir) / key, f"{ENV_TOKEN_DIR}={token_dir} (key {key})"
    else:
        return None
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise EntrypointError(
            f"cannot read the token of {unit} from {setting}: {exc.strerror}"
        ) from None
    if not token:
        raise EntrypointError(f"the token file {path} for {unit} is empty ({setting})")
    return token


def agent_argv(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """`genconf agent ARGV...` (``argv[0]`` is "agent") with each option ARGV does not
    give taken from the environment, and --token read from its file."""
    given = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
    args = list(argv)
    unit = None
    for option, action in agent_options().items():
        if option in given:
            continue
        if option == "--unit":
            unit = unit_of(environ)
            if unit is None:
                raise EntrypointError(
                    "genconf agent needs a unit: set GENCONF_UNIT=APP/N, or "
                    f"{ENV_UNIT_FROM} (a StatefulSet pod name: web-0 is web/0), or pass --unit"
                )
            args += [option, unit]
            continue
        value = environ.get(env_name(option))
        if value is None or value == "":
            continue
        if action.nargs == 0:  # a switch: on or off
            flag = value.strip().lower()
            if flag not in _TRUE | _FALSE:
                raise EntrypointError(f"{env_name(option)} must be true or false, got {value!r}")
            if flag in _TRUE:
                args.append(option)
            continue
        args += [option, value]
    if "--write" not in given and not environ.get(env_name("--write")):
        raise EntrypointError("genconf agent needs a file: set GENCONF_WRITE=PATH or pass --write")
    if unit is None:
        unit = _given_unit(argv)
    token = None if environ.get(ENV_TOKEN) or "--token" in given else token_for(unit, environ)
    return [*args, "--token", token] if token else args


def _given_unit(argv: Sequence[str]) -> str:
    for i, arg in enumerate(argv):
        if arg == "--unit" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--unit="):
            return arg.split("=", 1)[1]
    return ""


def container_argv(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The `genconf` arguments the image runs for ``docker run IMAGE ARGV...``."""
    if argv[:1] == ["agent"]:
        argv = agent_argv(argv, environ)
    return with_mongo_uri(argv, environ)


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """`genconf` as the image runs it: its exit code."""
    try:
        chosen = container_argv(argv, environ)
    except EntrypointError as exc:
        print(f"genconf: error: {exc}", file=sys.stderr)
        return 2
    return main(chosen)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], os.environ))
