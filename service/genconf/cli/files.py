"""Files a user hands the CLI: a schema, a set of config values, a diff.

YAML or JSON (by the ``.json`` suffix; YAML reads JSON too). Every error names the
file and says what shape was expected, before anything is sent to the server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from genconf.domain.schema import parse_schema, schema_to_doc
from genconf.errors import GenconfError, InvalidArgument


def read_text(path: str, what: str) -> str:
    """The file's text (``-``: standard input)."""
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GenconfError(f"cannot read {what} file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GenconfError(f"{what} file {path} is not UTF-8 text") from None


def _load(path: str, what: str) -> Any:
    text = read_text(path, what)
    is_json = path.endswith(".json")
    try:
        return json.loads(text) if is_json else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if is_json else "YAML (or JSON)"
        raise GenconfError(f"{what} file {path} is not valid {kind}: {exc}") from None


def load_schema_file(path: str) -> dict[str, dict[str, Any]]:
    """A charm-style ``config.yaml`` (``options: {key: {type, default, description}}``)
    or the bare mapping, in YAML or JSON, validated and normalised."""
    raw = _load(path, "schema") or {}
    options = raw.get("options") if isinstance(raw, dict) else None
    if isinstance(options, dict) and set(raw) == {"options"}:
        if all(isinstance(v, dict) for v in options.values()):
            raw = options
    try:
        return schema_to_doc(parse_schema(raw))
    except InvalidArgument as exc:
        raise InvalidArgument(f"schema file {path}: {exc.message}") from None


def load_values_file(path: str, application: str) -> dict[str, Any]:
    """Config values for ``application`` from a file, in one of three shapes:

    - plain: ``{key: value}``;
    - ``juju config APP --file``'s: ``{APP: {key: value}}``;
    - a charm ``config.yaml``'s: ``options: {key: {value: v}}`` (or ``default: v``,
      the other fields ignored), so a charm's file with its values filled in works.
    """
    raw = _load(path, "values")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidArgument(
            f"values file {path} must be a mapping of key: value "
            f"(or {application}: {{key: value}}, or options: {{key: {{value: ...}}}}), "
            f"not a {type(raw).__name__}"
        )
    if set(raw) == {application} and isinstance(raw[application], Mapping):
        raw = raw[application]
    elif set(raw) == {"options"} and isinstance(raw["options"], Mapping):
        raw = _option_values(path, raw["options"])
    return {str(key): value for key, value in raw.items()}


def _option_values(path: str, options: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, option in options.items():
        if not isinstance(option, Mapping):
            raise InvalidArgument(
                f"values file {path}: options.{key} must be a mapping with a value "
                "(or default), e.g. port: {value: 8080}"
            )
        if "value" in option:
            out[key] = option["value"]
        elif option.get("default") is not None:
            out[key] = option["default"]
    return out
