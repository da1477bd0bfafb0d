"""The Prometheus endpoint's figures move as operations happen; JSON log lines parse."""

from __future__ import annotations

import io
import json
import logging
import urllib.request
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.servers import running_server

from genconf.client import Client
from genconf.errors import ClientError
from genconf.logs import JsonFormatter


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""

    def fetch() -> str:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            return response.read().decode()

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(fetch())
        for s in family.samples
    }


def rpc_count(samples: dict[Any, float], method: str, code: str) -> float:
    return samples.get(("genconf_rpc_total", (("code", code), ("method", method))), 0.0)


async def test_metrics_move_with_operations(mongo_uri: str, db_name: str) -> None:
    async with (
        running_server(mongo_uri, db_name, metrics_listen="127.0.0.1:0") as srv,
        Client(srv.address, timeout=10) as client,
    ):
        assert srv.metrics_address is not None
        before = await anyio.to_thread.run_sync(scrape, srv.metrics_address)
        assert before[("genconf_watchers", (("kind", "config"),))] == 0

        created = await client.create_application("web", schema={"k": {"type": "int"}}, units=2)
        with pytest.raises(ClientError):
            await client.get_application("nope")
        watch = client.watch_config("web/0", min_revision=created.revision)
        first = await anext(watch)
        written = await client.set_config("web", {"k": 5})
        changed = await anext(watch)
        assert changed.hash != first.hash
        await client.list_applications(min_revision=written.revision)
        during = await anyio.to_thread.run_sync(scrape, srv.metrics_address)
        await watch.aclose()

        def revision(samples: dict[Any, float]) -> int:
            seconds = int(samples[("genconf_cache_cluster_time_seconds", ())])
            return seconds << 32 | int(samples[("genconf_cache_cluster_time_increment", ())])

        assert revision(during) >= written.revision > revision(before)
        for name in ("genconf_deltas_applied_total", "genconf_change_events_total"):
            assert during[(name, ())] > before[(name, ())]
        assert during[("genconf_notifications_total", ())] >= 1
        assert during[("genconf_feed_overflows_total", ())] == 0  # exported, none yet
        assert during[("genconf_unreadable_events_total", ())] == 0
        assert during[("genconf_unreadable_documents_total", ())] == 0
        assert during[("genconf_ring_bytes", ())] > before[("genconf_ring_bytes", ())]
        assert during[("genconf_watchers", (("kind", "config"),))] == 1
        assert rpc_count(during, "ControllerService/SetConfig", "OK") == 1
        assert rpc_count(during, "ControllerService/GetApplication", "NOT_FOUND") == 1
        assert rpc_count(during, "ControllerService/CreateApplication", "OK") == 1
        latency = ("genconf_rpc_seconds_count", (("method", "ControllerService/SetConfig"),))
        assert during[latency] == 1

        async def watch_closed() -> dict[Any, float]:
            while True:
                now = await anyio.to_thread.run_sync(scrape, srv.metrics_address)
                if now[("genconf_watchers", (("kind", "config"),))] == 0:
                    return now
                await anyio.sleep(0.05)  # polling a scrape: there is no event to wait on

        with anyio.fail_after(10):
            after = await watch_closed()
        assert rpc_count(after, "AgentService/WatchConfig", "CANCELLED") == 1


def test_json_log_lines_parse() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("genconf.test-json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("listening on %s", "127.0.0.1:1")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines() if line[:1] == "{")
    assert first["level"] == "warning" and first["message"] == "listening on 127.0.0.1:1"
    assert first["logger"] == "genconf.test-json" and first["time"].endswith("+00:00")
    assert second["level"] == "error" and "ValueError: boom" in second["exception"]
