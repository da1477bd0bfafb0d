"""Unified diffs of string values, and applying them as patches.

`unified_diff` prints what `genconf version diff --key` shows; `apply_patch` takes that,
or what GNU `diff -u` or `git diff` prints, and applies it the way GNU `patch` does
without fuzz: every context and removed line must match exactly, a hunk may move (the
nearest position to where it says it goes, carrying the previous hunk's offset, never
overlapping an earlier hunk), and a hunk with less context on one side than the other
is pinned to that end of the text. A refused patch changes nothing.

Lines end at "\\n" only: a "\\r" (CRLF text) or any other separator is part of a line,
as diff and patch see bytes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from genconf.errors import InvalidArgument, PatchFailed

CONTEXT = 3  # lines of context around each change, as `diff -u` and `git diff` print
NO_NEWLINE = "\\ No newline at end of file\n"

# What `git diff` (and `diff -r`) print before the ---/+++ headers; ignored, as are
# blank lines there.
_PREAMBLE = (
    "diff ",
    "index ",
    "old mode ",
    "new mode ",
    "deleted file mode ",
    "new file mode ",
    "similarity index ",
    "dissimilarity index ",
    "rename from ",
    "rename to ",
    "copy from ",
    "copy to ",
)
_HUNK_HEADER = re.compile(r"(@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@)")
_HEADER_FORM = "'@@ -START,COUNT +START,COUNT @@'"
_SHOWN = 60  # characters of a line quoted in a message


def unified_diff(old: str, new: str, key: str) -> str:
    """A unified diff from ``old`` to ``new`` (headers ``a/KEY``, ``b/KEY``); "" if equal.

    difflib leaves a last line without its newline and no marker: add the
    "\\ No newline at end of file" line GNU patch and git apply need to tell the cases apart.
    """
    if old == new:
        return ""
    lines = difflib.unified_diff(
        split_lines(old), split_lines(new), fromfile=f"a/{key}", tofile=f"b/{key}", n=CONTEXT
    )
    return "".join(line if line.endswith("\n") else line + "\n" + NO_NEWLINE for line in lines)


def apply_patch(text: str, patch: str, key: str) -> str:
    """``text`` with the unified diff ``patch`` applied; ``key`` names the value in errors.

    Raises InvalidArgument for a malformed diff and PatchFailed when a hunk does not fit.
    """
    hunks = _parse(patch, key)
    lines = split_lines(text)
    out: list[str] = []
    done = 0  # lines of ``text`` consumed: no later hunk may start before this
    offset = 0  # where the previous hunk landed minus where it said it would
    for hunk in hunks:
        at = _locate(hunk, lines, done, offset)
        if at is None:
            raise PatchFailed(
                f"patch for {key!r} does not apply: hunk {hunk.number} ({hunk.header}) "
                f"{_why_not(hunk, lines, done, offset)}; nothing was written. "
                "Diff against the current value (genconf config get) and retry"
            )
        out += lines[done:at]
        out += hunk.new
        done = at + len(hunk.old)
        offset = at - hunk.start
    out += lines[done:]
    return "".join(out)


def split_lines(text: str) -> list[str]:
    """``text`` cut after every "\\n", the newline kept (str.splitlines also cuts at
    "\\r", "\\x0c", "\\u2028"... which diff and patch treat as ordinary characters)."""
    pieces = text.split("\n")
    lines = [piece + "\n" for piece in pieces[:-1]]
    if pieces[-1]:
        lines.append(pieces[-1])
    return lines


# -- the parsed form -------------------------------------------------------------------


@dataclass(frozen=True)
class Hunk:
    """One hunk: the lines it expects (``old``) and writes (``new``), each with its
    newline unless marked "\\ No newline at end of file"."""

    number: int  # 1-based, for messages
    header: str  # "@@ -10,4 +10,5 @@", as the diff wrote it
    old_start: int  # the header's first old line (0 with an empty old range)
    old: tuple[str, ...]
    new: tuple[str, ...]
    leading: int  # context lines before the first change
    trailing: int  # context lines after the last change
    at_end: bool  # a line carries the no-newline marker: the hunk ends the text

    @property
    def start(self) -> int:
        """The index in the text where ``old`` says it begins (an insertion goes
        *after* line ``old_start``)."""
        return self.old_start - 1 if self.old else self.old_start

    @property
    def pinned_start(self) -> bool:
        """Less leading than trailing context at line 1: diff had no more lines above,
        so the hunk must stay at the top (GNU patch's rule)."""
        return self.leading < self.trailing and self.old_start <= 1

    @property
    def pinned_end(self) -> bool:
        """Less trailing than leading context: the hunk must end the text."""
        return self.trailing < self.leading


def _malformed(key: str, number: int, what: str) -> InvalidArgument:
    return InvalidArgument(f"cannot patch {key!r}: the diff is malformed at line {number}: {what}")


def _show(line: str) -> str:
    """A diff or text line for a message: quoted, shortened, its newline left out."""
    body = line.removesuffix("\n")
    return repr(body) if len(body) <= _SHOWN else repr(body[: _SHOWN - 3]) + "..."


def _parse(patch: str, key: str) -> list[Hunk]:
    """The hunks of ``patch``; the preamble and the ---/+++ headers are skipped."""
    lines = patch.split("\n")
    if lines[-1] == "":  # the newline ending the last line, not an empty line
        lines.pop()
    hunks: list[Hunk] = []
    headers = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("@@"):
            header_line = i + 1
            hunk, i = _parse_hunk(lines, i, len(hunks) + 1, key)
            _check_order(hunks, hunk, header_line, key)
            hunks.append(hunk)
        elif hunks:
            _after_hunk(lines, i, hunks[-1], key)
            break  # only blank lines remain
        elif line.startswith("--- ") and not headers:
            if i + 1 >= len(lines) or not lines[i + 1].startswith("+++ "):
                raise _malformed(key, i + 1, "the '---' header is not followed by a '+++' header")
            headers = True
            i += 2
        elif line.startswith(_PREAMBLE) or not line.strip():
            i += 1
        else:
            raise _malformed(
                key,
                i + 1,
                f"expected a '--- a/{key}' header or a hunk header {_HEADER_FORM}, "
                f"got {_show(line)}",
            )
    if not hunks:
        raise InvalidArgument(
            f"cannot patch {key!r}: the diff has no hunks (no {_HEADER_FORM} line); "
            "give a unified diff as `diff -u` or `genconf version diff --key` prints it"
        )
    return hunks


def _after_hunk(lines: list[str], i: int, last: Hunk, key: str) -> None:
    """Line ``i`` is neither a hunk header nor inside a hunk: blank lines may end the
    diff; anything else is an error saying what it looks like."""
    if all(not line.strip() for line in lines[i:]):
        return
    line = lines[i]
    if line.startswith("diff ") or (
        line.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")
    ):
        raise _malformed(key, i + 1, f"a second file's header; the diff must change {key!r} only")
    if line[:1] in (" ", "-", "+", "\\"):
        raise _malformed(
            key,
            i + 1,
            f"{_show(line)} follows hunk {last.number} ({last.header}), which its header says "
            "is complete: the header's line counts do not match its body",
        )
    raise _malformed(
        key, i + 1, f"expected a hunk header {_HEADER_FORM} or the end, got {_show(line)}"
    )


def _parse_hunk(lines: list[str], i: int, number: int, key: str) -> tuple[Hunk, int]:
    """The hunk whose header is line ``i``, and the index of the line after it."""
    match = _HUNK_HEADER.match(lines[i])
    if match is None:
        raise _malformed(key, i + 1, f"bad hunk header {_show(lines[i])}; expected {_HEADER_FORM}")
    header = match.group(1)
    old_start, new_start = int(match.group(2)), int(match.group(4))
    old_count = 1 if match.group(3) is None else int(match.group(3))
    new_count = 1 if match.group(5) is None else int(match.group(5))
    if old_count == new_count == 0:
        raise _malformed(key, i + 1, f"hunk {number} ({header}) has no lines")
    if (old_start == 0 < old_count) or (new_start == 0 < new_count):
        raise _malformed(key, i + 1, f"hunk {number} ({header}): only an empty range starts at 0")
    body = _Body(f"hunk {number} ({header})", old_count, new_count, key)
    i += 1
    while body.wants_more():
        if i >= len(lines):
            raise _malformed(key, i, body.cut_short())
        body.add(lines[i], i + 1)
        i += 1
    if i < len(lines) and lines[i].startswith("\\"):
        body.add(lines[i], i + 1)
        i += 1
    leading, trailing = body.context()
    hunk = Hunk(
        number,
        header,
        old_start,
        tuple(body.old),
        tuple(body.new),
        leading,
        trailing,
        body.old_closed or body.new_closed,
    )
    return hunk, i


def _check_order(hunks: list[Hunk], hunk: Hunk, line: int, key: str) -> None:
    """Hunks come in file order without overlapping, and none follows the end of file."""
    if not hunks:
        return
    last = hunks[-1]
    where = f"hunk {hunk.number} ({hunk.header})"
    if last.at_end:
        raise _malformed(
            key, line, f"{where} follows hunk {last.number}, which reaches the end of the file"
        )
    if hunk.start < last.start + len(last.old):
        raise _malformed(
            key,
            line,
            f"{where} starts before hunk {last.number} ({last.header}) ends; hunks must "
            "come in file order and must not overlap",
        )


class _Body:
    """Collects a hunk's lines, counting them down against its header."""

    def __init__(self, where: str, old_count: int, new_count: int, key: str) -> None:
        self.where = where
        self.key = key
        self.need_old = old_count
        self.need_new = new_count
        self.old: list[str] = []
        self.new: list[str] = []
        self.kinds = ""  # one of " -+" per line: where the context is
        self.last = ""  # the kind of the previous line, "" when a marker may not follow
        self.old_closed = False  # a line without newline ended the old side
        self.new_closed = False

    def wants_more(self) -> bool:
        return self.need_old > 0 or self.need_new > 0

    def cut_short(self) -> str:
        return (
            f"the diff ends inside {self.where}, {self.need_old} old and {self.need_new} "
            "new line(s) short of its header's counts"
        )

    def add(self, line: str, number: int) -> None:
        """One body line; an empty line is an empty context line (editors strip the
        space), a backslash line takes the newline off the line before it."""
        kind = line[:1] or " "
        if kind == "\\":
            self._no_newline(number)
            return
        if kind not in " -+":
            raise _malformed(
                self.key,
                number,
                f"{_show(line)} is not a hunk line (' ', '-', '+' or '\\'); {self.where} still "
                f"needs {self.need_old} old and {self.need_new} new line(s): its header's "
                "line counts do not match its body",
            )
        uses_old, uses_new = kind in " -", kind in " +"
        if (uses_old and self.need_old == 0) or (uses_new and self.need_new == 0):
            side = "old" if uses_old and self.need_old == 0 else "new"
            raise _malformed(
                self.key,
                number,
                f"{self.where} has more {side} lines than its header says: the header's line "
                "counts do not match its body",
            )
        if (uses_old and self.old_closed) or (uses_new and self.new_closed):
            raise _malformed(
                self.key,
                number,
                f"{self.where} goes on after a line marked '\\ No newline at end of file'",
            )
        text = line[1:] + "\n"
        if uses_old:
            self.old.append(text)
            self.need_old -= 1
        if uses_new:
            self.new.append(text)
            self.need_new -= 1
        self.kinds += kind
        self.last = kind

    def _no_newline(self, number: int) -> None:
        if not self.last:
            raise _malformed(
                self.key,
                number,
                f"'\\ No newline at end of file' does not follow a line of {self.where}",
            )
        if self.last in " -":
            self.old[-1] = self.old[-1].removesuffix("\n")
            self.old_closed = True
        if self.last in " +":
            self.new[-1] = self.new[-1].removesuffix("\n")
            self.new_closed = True
        self.last = ""

    def context(self) -> tuple[int, int]:
        """Context lines before the first and after the last change (equal, so no
        pinning, for a hunk of context alone)."""
        leading = len(self.kinds) - len(self.kinds.lstrip(" "))
        trailing = len(self.kinds) - len(self.kinds.rstrip(" "))
        return leading, trailing


# -- placing hunks ---------------------------------------------------------------------


def _locate(hunk: Hunk, lines: list[str], done: int, offset: int) -> int | None:
    """Where ``hunk`` applies: the first fitting candidate, or None."""
    size = len(hunk.old)
    for at in _candidates(hunk, lines, done, offset):
        # the slice test is only a fast path: _mismatch decides (and says why not)
        if tuple(lines[at : at + size]) == hunk.old and _mismatch(hunk, lines, at) is None:
            return at
    return None


def _candidates(hunk: Hunk, lines: list[str], done: int, offset: int) -> Iterator[int]:
    """Positions to try, nearest first: the stated line moved by the previous hunk's
    offset, then one below, one above, two below... never before ``done``."""
    last = len(lines) - len(hunk.old)  # the last position the old lines fit at
    if hunk.pinned_start or hunk.pinned_end:
        at = 0 if hunk.pinned_start else last
        if done <= at:
            yield at
        return
    if last < done:
        return
    guess = min(max(hunk.start + offset, done), last)
    yield guess
    if not hunk.old:  # a bare insertion fits anywhere: moving it would be a guess
        return
    for step in range(1, max(last - guess, guess - done) + 1):
        if guess + step <= last:
            yield guess + step
        if guess - step >= done:
            yield guess - step


def _mismatch(hunk: Hunk, lines: list[str], at: int) -> str | None:
    """Why ``hunk`` does not fit at index ``at`` of ``lines``, or None if it does."""
    for i, want in enumerate(hunk.old):
        number = at + i + 1
        if at + i >= len(lines):
            return (
                f"expects line {number} to be {_show(want)}, "
                f"but the value has only {len(lines)} line(s)"
            )
        have = lines[at + i]
        if have != want:
            return f"expects line {number} to be {_show(want)}{_differs(want, have)}"
    end = at + len(hunk.old)
    if hunk.new and not hunk.new[-1].endswith("\n") and end != len(lines):
        return (
            "must end the value (its last line has no newline at end), "
            f"but the value goes on after line {end}"
        )
    if not hunk.old and at and not lines[at - 1].endswith("\n"):
        return f"adds lines after line {at}, which has no newline at end"
    return None


def _differs(want: str, have: str) -> str:
    """How a text line differs from the line a hunk expects, newlines included (the
    end of a sentence that names the expected line)."""
    if want.removesuffix("\n") != have.removesuffix("\n"):
        return f", it is {_show(have)}"
    if want.endswith("\n"):
        return ", but it is the last line and has no newline at end"
    return " with no newline at end, but it has one"


def _why_not(hunk: Hunk, lines: list[str], done: int, offset: int) -> str:
    """The reason a hunk fits nowhere, told at the position it was first tried at."""
    if hunk.pinned_start:
        at = 0
    elif hunk.pinned_end:
        at = max(len(lines) - len(hunk.old), 0)
    else:
        at = max(hunk.start + offset, 0)
    return _mismatch(hunk, lines, min(max(at, done), len(lines))) or (
        f"would overlap hunk {hunk.number - 1} (where it fits, an earlier hunk already applied)"
    )
