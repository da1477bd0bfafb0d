"""``genconf agent --template TPL``: the config rendered through an operator's Jinja2
template (an ``nginx.conf``, a ``.properties`` file), as consul-template and confd do.

The template is read from disk at every render, so an operator who fixes it sees
the fix at the next config change (or at once with SIGHUP, see `runner`). It is
strict: an undefined name or key is an error, never an empty string in a config
file. Autoescaping is off (the output is a config file, not HTML) and a trailing
newline is kept. ``{% include %}`` and ``{% import %}`` find files next to TPL.

What a template sees: each config key as a top-level name (``{{ port }}``), the
whole config as ``config`` (``{{ config["log-level"] }}`` for keys that are not
names), and ``unit``, ``hash`` and ``branch`` ("" on master). Those four names win
over config keys of the same name, which stay reachable through ``config``.

Every failure is a `RenderError` naming the template file, the line and what went
wrong (``template web.conf.j2, line 3: 'db_host' is undefined``); the agent reports
it as a failed apply and leaves PATH as it was.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from genconf.agent.files import RenderError


def environment(directory: Path) -> jinja2.Environment:
    """A fresh environment (no template cache: the file is read at every render)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        cache_size=0,
    )


def template_context(
    config: Mapping[str, Any], *, unit: str, hash_: str, branch: str
) -> dict[str, Any]:
    return {**config, "config": dict(config), "unit": unit, "hash": hash_, "branch": branch}


def _line_in_templates(exc: BaseException, directory: Path) -> tuple[str, int] | None:
    """The innermost template file and line the error was raised at: Jinja2 rewrites
    the traceback so that template code shows as frames of the template's file."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.lineno is not None and Path(frame.filename).is_relative_to(directory):
            found = (frame.filename, frame.lineno)
    return found


def render_template(
    template: Path, config: Mapping[str, Any], *, unit: str, hash_: str, branch: str
) -> bytes:
    """The rendered file's bytes (UTF-8), or a RenderError naming the line."""
    directory = template.resolve().parent
    env = environment(directory)
    try:
        compiled = env.get_template(template.name)
        text = compiled.render(template_context(config, unit=unit, hash_=hash_, branch=branch))
    except jinja2.TemplateSyntaxError as exc:
        where = _shown(exc.filename, directory) if exc.filename else template.name
        raise RenderError(f"template {where}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        if exc.name == template.name:
            raise RenderError(f"cannot read template {template}: no such file") from None
        raise RenderError(_located(exc, directory, template, f"cannot find {exc.name!r}")) from None
    except OSError as exc:
        raise RenderError(f"cannot read template {template}: {exc.strerror or exc}") from None
    except Exception as exc:  # UndefinedError, and whatever a filter or expression raised
        what = str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
        raise RenderError(_located(exc, directory, template, what)) from None
    return text.encode()


def _located(exc: BaseException, directory: Path, template: Path, what: str) -> str:
    where = _line_in_templates(exc, directory)
    if where is None:
        return f"template {template.name}: {what}"
    return f"template {_shown(where[0], directory)}, line {where[1]}: {what}"


def _shown(filename: str, directory: Path) -> str:
    """A template file as the operator names it: relative to TPL's directory."""
    return os.path.relpath(filename, directory)
