"""`genconf export` and `genconf import`: a model to a file and back.

The records are those of docs/export-format.md, written as a YAML stream (one
document per record, ``---`` before each) or as JSON Lines (one record per line,
exactly the server's canonical JSON). Both are written and read one record at a
time, so a long history never sits in memory here either. The format comes from
``--format``, else the file's suffix (``.yaml``/``.yml``, ``.jsonl``/``.ndjson``/
``.json``), else YAML when writing and, when reading, the first character (``{``:
JSON Lines).

Both are deterministic: the same model gives the same bytes in either format.
"""

from __future__ import annotations

import argparse
import contextlib
import enum
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

import yaml

from genconf.cli import render
from genconf.cli.framework import Command, Commands, Ctx, arg
from genconf.client.transfer import ImportResult
from genconf.errors import GenconfError


class FileFormat(enum.StrEnum):
    YAML = "yaml"
    JSONL = "jsonl"


SUFFIXES: Final = {
    ".yaml": FileFormat.YAML,
    ".yml": FileFormat.YAML,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
    ".json": FileFormat.JSONL,
}


def format_of(path: str, given: str | None) -> FileFormat | None:
    """``--format`` if given, else the file's suffix (None: neither says)."""
    if given:
        return FileFormat(given)
    return SUFFIXES.get(Path(path).suffix.lower()) if path != "-" else None


# -- YAML ----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Safe YAML; text with several lines as a literal block, as people write it."""


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    """Text of several lines as a literal block (the emitter quotes it instead when
    a block could not keep it exactly: trailing blanks, control characters). Text
    holding a line break YAML knows and JSON does not (NEL, U+2028, U+2029) is
    double-quoted, where PyYAML escapes it: anywhere else it would read back as a
    plain line break."""
    style = None
    if any(c in text for c in _OTHER_BREAKS):
        style = '"'
    elif "\n" in text:
        style = "|"
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_OTHER_BREAKS: Final = "\x85\u2028\u2029"


_Dumper.add_representer(str, _text)


class _Loader(yaml.SafeLoader):
    """Safe YAML with strings kept as strings: no implicit timestamps (a time
    stays the text the server reads), and a key given twice is refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} appears twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def yaml_document(text: str) -> str:
    """One record (its canonical JSON) as a YAML document, ``---`` first; its fields
    in the record's order."""
    return "---\n" + yaml.dump(
        json.loads(text),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def _json_data(value: Any, where: str) -> None:
    """Refuse what YAML holds and JSON does not (keys that are not text, dates,
    binary), rather than let ``json.dumps`` turn it into something else."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, v in item.items():
                if not isinstance(key, str):
                    raise GenconfError(f"{where}: the key {key!r} is not text; quote it")
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            raise GenconfError(f"{where}: {type(item).__name__} {item!r} is not JSON data")


def yaml_records(stream: IO[str], name: str) -> Iterator[str]:
    """The records of a YAML stream as JSON texts, one document at a time."""
    number = 0
    try:
        for doc in yaml.load_all(stream, Loader=_Loader):
            number += 1
            _json_data(doc, f"{name}: document {number}")
            try:
                yield json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            except ValueError as exc:
                raise GenconfError(f"{name}: document {number}: {exc}") from None
    except yaml.YAMLError as exc:
        raise GenconfError(f"{name} is not valid YAML after document {number}: {exc}") from None


def jsonl_records(stream: IO[str]) -> Iterator[str]:
    """The records of JSON Lines, as they are (the server checks them); blank lines skipped."""
    for line in stream:
        if line.strip():
            yield line.rstrip("\r\n")


# -- commands ----------------------------------------------------------------------


async def _export(ctx: Ctx, args: argparse.Namespace) -> None:
    path = args.file or "-"
    kind = format_of(path, args.format) or FileFormat.YAML
    with _written(path) as out:
        async for text in ctx.client.export_model(args.application or ()):
            out.write(yaml_document(text) if kind is FileFormat.YAML else text + "\n")


@contextlib.contextmanager
def _written(path: str) -> Iterator[IO[str]]:
    """Standard output (``-``), or ``path`` written as ``path.partial`` and renamed
    once complete, so a failed export never leaves a file that looks whole."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = Path(path + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            yield out
        partial.replace(path)
    except OSError as exc:
        raise GenconfError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)


def _opened(path: str, stack: contextlib.ExitStack) -> IO[str]:
    if path == "-":
        return sys.stdin
    try:
        return stack.enter_context(open(path, encoding="utf-8"))
    except OSError as exc:
        raise GenconfError(f"cannot read {path}: {exc.strerror}") from None


def _sniffed(stream: IO[str]) -> tuple[FileFormat, IO[str]]:
    """The format of a stream by its first character that is not blank (``{``: JSON
    Lines), and the stream from its start."""
    head = ""
    while (char := stream.read(1)) and char.isspace():
        head += char
    kind = FileFormat.JSONL if char == "{" else FileFormat.YAML
    return kind, _Chained(head + char, stream)  # type: ignore[return-value]


class _Chained:
    """A text stream that reads ``head`` first, then ``rest``."""

    def __init__(self, head: str, rest: IO[str]) -> None:
        self.head = head
        self.rest = rest

    def read(self, size: int = -1) -> str:
        if not self.head:
            return self.rest.read(size)
        if size < 0:
            out, self.head = self.head + self.rest.read(), ""
            return out
        out, self.head = self.head[:size], self.head[size:]
        return out + (self.rest.read(size - len(out)) if len(out) < size else "")

    def __iter__(self) -> Iterator[str]:
        if self.head:
            line = self.head + self.rest.readline()
            self.head = ""
            yield line
        yield from self.rest


def summary(result: ImportResult) -> dict[str, Any]:
    """The import's totals: ``-o json``/``yaml`` print this shape."""
    t = result.total
    return {
        "records": t.records,
        "applications": list(t.applications),
        "branches": list(t.branches),
        "units": t.units,
        "versions": t.versions,
        "generations": t.generations,
        "transactions": len(result.steps),
        "renumbered": {"first": t.renumbered_first, "last": t.renumbered_last}
        if t.renumbered_last
        else None,
        "revision": t.revision,
    }


def summary_text(data: dict[str, Any]) -> str:
    text = (
        f"imported {data['records']} records in {data['transactions']} transaction(s): "
        f"{len(data['applications'])} application(s) ({', '.join(data['applications']) or '-'}), "
        f"{data['units']} unit(s), {data['versions']} version(s), "
        f"{len(data['branches'])} branch(es), {data['generations']} generation(s)"
    )
    if data["renumbered"]:
        text += (
            f"; generations renumbered {data['renumbered']['first']}-{data['renumbered']['last']}"
        )
    return text


async def _import(ctx: Ctx, args: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        stream = _opened(args.file, stack)
        kind = format_of(args.file, args.format)
        if kind is None:
            kind, stream = _sniffed(stream)
        name = "standard input" if args.file == "-" else args.file
        records = yaml_records(stream, name) if kind is FileFormat.YAML else jsonl_records(stream)
        result = await ctx.client.import_model(
            records, renumber_generations=args.renumber_generations
        )
    # Return once this server's cache holds the import: the next command reads it.
    await ctx.client.list_branches(min_revision=result.total.revision)
    data = summary(result)
    ctx.out.emit(data, render.render_text(summary_text(data)))


def register(commands: Commands) -> None:
    formats = [f.value for f in FileFormat]
    commands.add_all(
        Command(
            "export",
            _export,
            "write the model (or some applications) with its whole history",
            ["> model.yaml", "--application web --application db --file part.jsonl"],
            [
                arg(
                    "--application",
                    action="append",
                    metavar="APP",
                    help="only this application, its branches' parts and its generations "
                    "(repeatable)",
                ),
                arg("--file", help="write here instead of standard output"),
                arg("--format", choices=formats, help="yaml (default) or jsonl; else by suffix"),
            ],
            description="Write the model: applications, units, active branches, every "
            "version and generation (docs/export-format.md). Admin only: an export holds "
            "every secret value.",
        ),
        Command(
            "import",
            _import,
            "restore an export into this model (its applications must be new here)",
            ["model.yaml", "- < model.jsonl", "part.yaml --renumber-generations"],
            [
                arg("file", metavar="FILE", help="an export; - reads standard input"),
                arg("--format", choices=formats, help="yaml or jsonl; else by suffix or content"),
                arg(
                    "--renumber-generations",
                    action="store_true",
                    help="give the imported generations new ids above this model's, "
                    "instead of refusing ids it has",
                ),
            ],
            description="Restore an export: refused, naming every collision, before anything "
            "is written if an application, unit, branch or generation id exists here; "
            "written a group of linked applications per transaction, each reported.",
        ),
    )
