"""How `genconf` prints: one layer shared by every command.

A command builds plain data (its stable machine-readable shape, see
`genconf.shapes`) and, for people, a rendering of it (`genconf.cli.render`).
`-o json` and `-o yaml` print the data as is (sorted keys, so the same state always prints the same
bytes); `-o table`, the default, prints the rendering; `-o wide` prints the same
rendering with more columns (what each shape carries besides) and never cuts a cell.
Streams (`watch`) print one line per item: JSON Lines, YAML documents, or text.

How a table fits (`Output.table`):

- **Piped** (not a terminal): plain and complete, every cell as it is.
- **On a terminal** of known width (``COLUMNS`` when set, else the terminal's own
  size): a table wider than the terminal is narrowed by cutting its free-text
  columns (those the renderer names as ``cut``: descriptions, values, reasons,
  CHANGES, messages), widest first, so the widest ones end level; a cut cell ends
  in "…". A column never gets narrower than its header or `MIN_CUT_WIDTH`;
  names, versions and hashes are never cut. When even that does not fit, the
  lines are longer than the terminal rather than losing a name. Colour does not
  count towards width, and a newline inside a cell shows as "⏎" so a row stays a line.
- **On a terminal of unknown width** (0 columns, as a fresh pseudo-terminal says):
  each free-text cell is cut at `CELL_WIDTH_ON_TTY`.
- ``-o wide`` is never cut, on a terminal or not.

`Output.fields` (``name:  value`` lines of one object, as ``kubectl describe``)
are never cut: on a terminal of known width a long value wraps at spaces onto
indented lines (`-o wide`: one line each, however long).
"""

from __future__ import annotations

import enum
import json
import os
import re
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import yaml

ANSI_RE: Final = re.compile(r"\x1b\[[0-9;]*m")
ANSI_RESET: Final = "\x1b[0m"
ELLIPSIS: Final = "…"
NEWLINE_MARK: Final = "⏎"
CELL_WIDTH_ON_TTY: Final = 60  # a terminal of unknown width: cells longer than this are cut
MIN_CUT_WIDTH: Final = 10  # a cut column keeps at least this many characters (or its header)
COLUMN_GAP: Final = 2  # spaces between two columns


class Format(enum.StrEnum):
    TABLE = "table"
    WIDE = "wide"
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


def terminal_width(stream: TextIO) -> int | None:
    """The width tables fit on ``stream``'s terminal: ``COLUMNS`` when it is a positive
    number (as `shutil.get_terminal_size` reads it), else the terminal's own size;
    None when neither says (a terminal that reports 0 columns)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return None
    return columns or None


def _sgr(code: str) -> Callable[[Style, str], str]:
    """A `Style` method: ``text`` in the ANSI SGR ``code`` when colour is on."""

    def styled(self: Style, text: str) -> str:
        return f"\x1b[{code}m{text}{ANSI_RESET}" if self.color and text else text

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


def shorten(text: str, width: int) -> str:
    """``text`` in at most ``width`` visible characters, ending in "…" when cut; colour
    codes are kept (and closed) and do not count."""
    if visible_len(text) <= width:
        return text
    keep = max(width - 1, 0)
    parts: list[str] = []
    shown = 0
    coloured = False
    pos = 0
    for match in ANSI_RE.finditer(text):
        plain = text[pos : match.start()]
        take = plain[: keep - shown]
        parts.append(take)
        shown += len(take)
        if shown >= keep:
            break
        parts.append(match.group())
        coloured = True
        pos = match.end()
    else:
        parts.append(text[pos:][: keep - shown])
    return "".join(parts) + ELLIPSIS + (ANSI_RESET if coloured else "")


def one_line(text: str) -> str:
    """A cell on one line: newlines as "⏎", tabs as a space."""
    return text.replace("\r\n", NEWLINE_MARK).replace("\n", NEWLINE_MARK).replace("\t", " ")


def wrap(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` visible characters, broken at spaces
    only (each of its own lines apart); a longer word stays whole on its own line."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        words = paragraph.split(" ")
        line = words[0]
        for word in words[1:]:
            if visible_len(line) + 1 + visible_len(word) <= width:
                line += " " + word
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines


def fit_widths(
    widths: Sequence[int], floors: Sequence[int], cuttable: Collection[int], room: int
) -> list[int]:
    """Column widths whose sum (plus the gaps between columns) is at most ``room``,
    narrowing only the ``cuttable`` columns, widest first (so the widest end level),
    none below its floor. The widths as given when nothing needs to go."""
    gaps = COLUMN_GAP * (len(widths) - 1)

    def at_cap(cap: int) -> list[int]:
        return [max(floors[i], min(w, cap)) if i in cuttable else w for i, w in enumerate(widths)]

    if sum(widths) + gaps <= room or not cuttable:
        return list(widths)
    # The largest cap that fits: the total only grows with the cap.
    low, high = 0, max(widths)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(at_cap(mid)) + gaps <= room:
            low = mid
        else:
            high = mid - 1
    fitted = at_cap(low)
    # Hand the columns at the cap what is left over, left first: use all the room.
    spare = room - gaps - sum(fitted)
    for i in sorted(cuttable):
        if spare <= 0:
            break
        if fitted[i] == low and widths[i] > low:
            fitted[i] += 1
            spare -= 1
    return fitted


def show(value: Any) -> str:
    """A config value as a person reads it: strings bare, everything else as JSON;
    no value at all (None: config values are never null) is "-"."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# A renderer turns the output's style into text lines for `-o table` and `-o wide`.
Renderer = Callable[["Output"], Iterable[str]]


@dataclass
class Output:
    """Where and how a command prints its result."""

    format: Format = Format.TABLE
    color: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    terminal: bool = False  # a person reads it: tables fit `width`
    width: int | None = None  # the terminal's columns; None: unknown (cut at CELL_WIDTH_ON_TTY)

    @classmethod
    def for_stream(cls, format: Format, color: ColorMode, stream: TextIO | None = None) -> Output:
        stream = stream or sys.stdout
        terminal = _isatty(stream)
        width = terminal_width(stream) if terminal else None
        return cls(format, wants_color(color, stream), stream, terminal, width)

    @property
    def style(self) -> Style:
        return Style(self.color)

    @property
    def machine(self) -> bool:
        return self.format in (Format.JSON, Format.YAML)

    @property
    def wide(self) -> bool:
        """``-o wide``: renderers add their extra columns, and nothing is cut."""
        return self.format is Format.WIDE

    @property
    def cuts(self) -> bool:
        """Whether tables are fitted to the terminal (cells cut with "…")."""
        return self.terminal and not self.wide

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
        """One cell as a terminal shows it: on one line (piped: exactly as it is)."""
        return one_line(text) if self.terminal else text

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[str]],
        *,
        empty: str = "",
        cut: Collection[str] | None = None,
    ) -> list[str]:
        """Aligned columns under a header; ``empty`` (if given) when there are no rows.

        ``cut`` names the free-text columns that may be cut to fit a terminal (None:
        any column); the others are never cut. See the module docstring."""
        cells = [[self.cell(c) for c in row] for row in rows]
        if not cells and empty:
            return [self.style.dim(empty)]
        widths = [len(h) for h in headers]
        for row in cells:
            for i, c in enumerate(row):
                widths[i] = max(widths[i], visible_len(c))
        if self.cuts:
            cuttable = {i for i, h in enumerate(headers) if cut is None or h in cut}
            if self.width is None:
                room = [
                    min(w, CELL_WIDTH_ON_TTY) if i in cuttable else w for i, w in enumerate(widths)
                ]
            else:
                floors = [
                    min(w, max(len(h), MIN_CUT_WIDTH)) for w, h in zip(widths, headers, strict=True)
                ]
                room = fit_widths(widths, floors, cuttable, self.width)
            cells = [[shorten(c, room[i]) for i, c in enumerate(row)] for row in cells]
            widths = [min(w, r) for w, r in zip(widths, room, strict=True)]

        def line(row: Sequence[str]) -> str:
            parts = [c + " " * (widths[i] - visible_len(c)) for i, c in enumerate(row)]
            return (" " * COLUMN_GAP).join(parts).rstrip()

        header = line(headers)
        return [self.style.bold(header), *(line(row) for row in cells)]

    def fields(self, pairs: Iterable[tuple[str, str]]) -> list[str]:
        """``name:  value`` lines, names aligned. One object's details are never cut:
        on a terminal of known width a long value wraps at spaces onto lines indented
        under it (a word longer than the room, such as a hash, stays whole)."""
        items = list(pairs)
        width = max((len(k) for k, _ in items), default=0) + 1
        indent = " " * (width + COLUMN_GAP)
        room = self.width - len(indent) if self.cuts and self.width is not None else None
        lines = []
        for k, v in items:
            first, *rest = wrap(v, room) if room is not None else [v]
            lines.append(f"{self.style.bold((k + ':').ljust(width))}  {first}")
            lines += (indent + more for more in rest)
        return lines


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, allow_unicode=True, default_flow_style=False)
