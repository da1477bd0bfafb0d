"""Container entrypoint: run `genconf`, taking `serve --mongo-uri` from GENCONF_MONGO_URI.

Why this exists: an exec-form CMD cannot put an environment variable into an
argument without a shell, and the image has no embedded MongoDB, so a bare
`serve` must be told where the replica set is. Everything else is `genconf` as
is (same arguments, same exit codes), run in this process so that it is PID 1
and gets SIGTERM directly. An explicit --mongo-uri always wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from genconf.cli.main import build_parser, main

ENV_MONGO_URI = "GENCONF_MONGO_URI"


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


if __name__ == "__main__":
    sys.exit(main(with_mongo_uri(sys.argv[1:], os.environ)))
