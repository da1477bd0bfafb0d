"""Where `genconf` finds its connection settings: flags, then environment, then a
config file, then defaults (the first that gives a value wins).

    flag                  environment                 config file key     default
    --server              GENCONF_SERVER              server              127.0.0.1:50051
                          (a host without a port means port 50051)
    --token               GENCONF_TOKEN               token               (none)
    --tls-ca              GENCONF_TLS_CA              tls_ca              (none: plaintext)
    --tls-server-name     GENCONF_TLS_SERVER_NAME     tls_server_name     (none: the host dialled)
    --insecure-plaintext  GENCONF_INSECURE_PLAINTEXT  insecure_plaintext  false
    -o/--output           GENCONF_OUTPUT              output              table
    --config              GENCONF_CONFIG              -                   (see below)

The config file is YAML (or JSON), e.g. ``server: 10.0.0.5:50051``. A file named
by --config or GENCONF_CONFIG must exist; the default one,
$XDG_CONFIG_HOME/genconf/config.yaml, is optional.

Without --tls-ca a token is sent in clear only to a loopback address;
``insecure_plaintext`` (true/false, yes/no, on/off, 1/0) allows it to any, for a
trusted network. ``tls_server_name`` is the name the server certificate is checked
against when it differs from the host dialled (``kubectl port-forward`` to
127.0.0.1 of a server whose certificate names genconf.genconf.svc).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from genconf.addresses import with_default_port
from genconf.cli.output import Format
from genconf.defaults import DEFAULT_LISTEN
from genconf.errors import ConfigFileError

DEFAULT_SERVER: Final = DEFAULT_LISTEN  # the server's own default address
FILE_KEYS: Final = ("server", "token", "tls_ca", "tls_server_name", "output", "insecure_plaintext")
ENV: Final = {
    "server": "GENCONF_SERVER",
    "token": "GENCONF_TOKEN",
    "tls_ca": "GENCONF_TLS_CA",
    "tls_server_name": "GENCONF_TLS_SERVER_NAME",
    "output": "GENCONF_OUTPUT",
    "insecure_plaintext": "GENCONF_INSECURE_PLAINTEXT",
}
_BOOLEANS: Final = {
    **dict.fromkeys(("true", "yes", "on", "1"), True),
    **dict.fromkeys(("false", "no", "off", "0", ""), False),
}


@dataclass(frozen=True)
class Settings:
    server: str = DEFAULT_SERVER
    token: str | None = None
    tls_ca: str | None = None
    tls_server_name: str | None = None  # checked against the certificate instead of the host
    output: Format = Format.TABLE
    insecure_plaintext: bool = False  # a token may go in clear off loopback
    config_file: Path | None = None  # the file that was read, if any


def default_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "genconf" / "config.yaml"


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigFileError(f"config file {path} must be a mapping, e.g. 'server: host:port'")
    normalised = {str(k).replace("-", "_"): v for k, v in raw.items()}
    unknown = sorted(set(normalised) - set(FILE_KEYS))
    if unknown:
        raise ConfigFileError(
            f"config file {path} has unknown key(s) {unknown}; allowed: {', '.join(FILE_KEYS)}"
        )
    for key, value in normalised.items():
        if key == "insecure_plaintext" and isinstance(value, bool):
            continue
        if not isinstance(value, str):
            raise ConfigFileError(f"config file {path}: {key} must be a string")
    return normalised


def _boolean(value: str | bool, where: str) -> bool:
    if isinstance(value, bool):
        return value
    try:
        return _BOOLEANS[value.strip().lower()]
    except KeyError:
        raise ConfigFileError(f"{where} must be true or false, got {value!r}") from None


def resolve(flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``flags`` (argparse values, None when not given) over ``env``
    over the config file over defaults."""
    env = os.environ if env is None else env
    explicit = flags.get("config") or env.get("GENCONF_CONFIG")
    path: Path | None = Path(explicit) if explicit else default_config_path(env)
    if not explicit and path is not None and not path.is_file():
        path = None
    from_file = read_config_file(path) if path is not None else {}
    if path is not None and from_file.get("tls_ca"):
        # A relative CA path in a config file means relative to that file.
        from_file["tls_ca"] = str(path.parent / Path(from_file["tls_ca"]).expanduser())

    def pick(key: str) -> str | None:
        value = flags.get(key)
        if value is None:
            value = env.get(ENV[key]) or None
        if value is None:
            value = from_file.get(key)
        return value

    output = pick("output") or Format.TABLE.value
    try:
        fmt = Format(output)
    except ValueError:
        raise ConfigFileError(
            f"unknown output format {output!r}; use one of: " + ", ".join(f.value for f in Format)
        ) from None
    if flags.get("insecure_plaintext"):
        insecure = True
    elif env.get(ENV["insecure_plaintext"]):
        insecure = _boolean(env[ENV["insecure_plaintext"]], ENV["insecure_plaintext"])
    else:
        where = f"config file {path}: insecure_plaintext"
        insecure = _boolean(from_file.get("insecure_plaintext", False), where)
    return Settings(
        server=with_default_port(pick("server") or DEFAULT_SERVER),
        token=pick("token"),
        tls_ca=pick("tls_ca"),
        tls_server_name=pick("tls_server_name"),
        output=fmt,
        insecure_plaintext=insecure,
        config_file=path,
    )
