"""How `genconf` prints: one layer shared by every command.

A command builds plain data (its stable machine-readable shape, see
`genconf.shapes`) and, for people, a rendering of it (`genconf.cli.render`).
`-o json` and `-o yaml` print the data as is (sorted keys, so the same state always prints the same
bytes); `-o table`, the default, prints the rendering: aligned columns, colour
and cells cut to a readable width on a terminal, plain and complete when piped.
Streams (`watch`) print one line per item: JSON Lines, YAML documents, or text.
"""

from __future__ import annotations

import enum
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import yaml

ANSI_RE: Final = re.compile(r"\x1b\[[0-9;]*m")
CELL_WIDTH_ON_TTY: Final = 60  # longer cells are cut on a terminal, never when piped


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


class ColorMode(enum.StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


def wants_color(mode: ColorMode, stream: TextIO) -> bool:
    """Colour only for a person: a terminal, unless NO_COLOR or TERM=dumb say no."""
    if mode is ColorMode.ALWAYS:
        return True
    if mode is ColorMode.NEVER or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _sgr(code: str) -> Callable[[Style, str], str]:
    """A `Style` method: ``text`` in the ANSI SGR ``code`` when colour is on."""

    def styled(self: Style, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    return styled


@dataclass
class Style:
    """ANSI styling that turns into plain text when colour is off."""

    color: bool = False

    bold = _sgr("1")
    dim = _sgr("2")
    red = _sgr("31")
    green = _sgr("32")
    yellow = _sgr("33")
    cyan = _sgr("36")


def visible_len(text: str) -> int:
    return len(ANSI_RE.sub("", text))


def show(value: Any) -> str:
    """A config value as a person reads it: strings bare, everything else as JSON."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# A renderer turns the output's style into text lines for `-o table`.
Renderer = Callable[["Output"], Iterable[str]]


@dataclass
class Output:
    """Where and how a command prints its result."""

    format: Format = Format.TABLE
    color: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    terminal: bool = False  # cut long cells to CELL_WIDTH_ON_TTY

    @classmethod
    def for_stream(cls, format: Format, color: ColorMode, stream: TextIO | None = None) -> Output:
        stream = stream or sys.stdout
        return cls(format, wants_color(color, stream), stream, _isatty(stream))

    @property
    def style(self) -> Style:
        return Style(self.color)

    @property
    def machine(self) -> bool:
        return self.format is not Format.TABLE

    def emit(self, data: Any, render: Renderer | None = None) -> None:
        """Print one result: ``data`` for machines, ``render`` for people."""
        if self.format is Format.JSON:
            self._write(to_json(data) + "\n")
        elif self.format is Format.YAML:
            self._write(to_yaml(data))
        elif render is not None:
            self._write("".join(line + "\n" for line in render(self)))
        else:
            self._write(to_yaml(data))

    def emit_item(self, data: Any, line: str) -> None:
        """Print one item of a stream right away: a JSON line, a YAML document or text."""
        if self.format is Format.JSON:
            self._write(json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n")
        elif self.format is Format.YAML:
            self._write("---\n" + to_yaml(data))
        else:
            self._write(line + "\n")

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    # -- building blocks for renderers ----------------------------------------

    def cell(self, text: str) -> str:
        if self.terminal and visible_len(text) > CELL_WIDTH_ON_TTY and "\x1b" not in text:
            return text[: CELL_WIDTH_ON_TTY - 1] + "…"
        return text

    def table(
        self, headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = ""
    ) -> list[str]:
        """Aligned columns under a header; ``empty`` (if given) when there are no rows."""
        cells = [[self.cell(c) for c in row] for row in rows]
        if not cells and empty:
            return [self.style.dim(empty)]
        widths = [len(h) for h in headers]
        for row in cells:
            for i, c in enumerate(row):
                widths[i] = max(widths[i], visible_len(c))

        def line(row: Sequence[str]) -> str:
            parts = [c + " " * (widths[i] - visible_len(c)) for i, c in enumerate(row)]
            return "  ".join(parts).rstrip()

        header = line(headers)
        return [self.style.bold(header), *(line(row) for row in cells)]

    def fields(self, pairs: Iterable[tuple[str, str]]) -> list[str]:
        """``name:  value`` lines, names aligned."""
        items = list(pairs)
        width = max((len(k) for k, _ in items), default=0) + 1
        return [f"{self.style.bold((k + ':').ljust(width))}  {v}" for k, v in items]


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, default_flow_style=False)
