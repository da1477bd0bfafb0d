"""Generate `genconf.v1` from `protos/` (``make protos``); tests check it is fresh."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROTOS = ROOT / "protos"
OUT = ROOT / "service"
PACKAGE = OUT / "genconf" / "v1"


def generate(out: Path) -> list[Path]:
    """Run protoc into ``out`` and return the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    target = out / "genconf" / "v1"
    (target / "__init__.py").write_text('"""Generated from protos/ by `make protos`."""\n')
    return sorted(target.glob("*"))


def main() -> int:
    generate(OUT)
    print(f"generated {PACKAGE.relative_to(ROOT)}")
    return 0


def stale() -> list[str]:
    """Generated files that differ from what protoc makes now."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p.read_bytes() for p in generate(Path(tmp)) if p.is_file()}
    current = {p.name: p.read_bytes() for p in PACKAGE.glob("*") if p.is_file()}
    return sorted(n for n in fresh.keys() | current.keys() if fresh.get(n) != current.get(n))


if __name__ == "__main__":
    sys.exit(main())
