"""`genconf serve --log-format json`: every line the server prints, on stdout and on
stderr, is a JSON object a log shipper can read: logs, the demo banner, the ready
line, and the error a server ends with."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.cli_runner import clean_env
from support.procs import first_line, stop_process
from support.servers import free_port

from genconf.cli.serve import READY_LINE

FIELDS = {"time", "level", "logger", "message"}


def json_lines(text: str) -> list[dict[str, Any]]:
    records = []
    for line in text.splitlines():
        record = json.loads(line)  # raises on a line that is not JSON
        assert isinstance(record, dict) and FIELDS <= record.keys(), line
        records.append(record)
    return records


async def test_every_line_of_a_json_server_is_json(tmp_path: Path) -> None:
    data, port, http = tmp_path / "data", free_port(), free_port()
    argv = [
        sys.executable, "-m", "genconf.cli.main", "serve", "--demo", "--log-format", "json",
        "--data-dir", str(data), "--listen", f"127.0.0.1:{port}",
        "--http-listen", f"127.0.0.1:{http}",
    ]  # fmt: skip
    env = clean_env(tmp_path)
    err_path = tmp_path / "stderr"
    with err_path.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env
        )
    try:
        banner = json.loads(await first_line(proc, 90))
        assert banner["logger"] == "genconf.demo" and "try next:" in banner["banner"]
        ready = json.loads(await first_line(proc, 30))
        assert ready["message"] == f"{READY_LINE} 127.0.0.1:{port}"
        assert ready["address"] == f"127.0.0.1:{port}"
        assert ready["http_address"] == f"127.0.0.1:{http}"

        # A second server on the same data dir ends with one JSON error line.
        second = await asyncio.create_subprocess_exec(
            *argv[:-4], "--listen", f"127.0.0.1:{free_port()}",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        _, second_err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 1
        (error,) = json_lines(second_err.decode())
        assert error["level"] == "error" and error["exit_code"] == 1
        assert f"data dir {data.resolve()} is in use" in error["message"]

        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert proc.stdout is not None
        assert json_lines((await proc.stdout.read()).decode()) == []  # nothing else
    finally:
        await stop_process(proc)
    logged = json_lines(err_path.read_text())
    assert any("shutting down" in r["message"] for r in logged), logged
