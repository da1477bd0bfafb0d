"""Prometheus metrics: the read side's figures at scrape time, RPCs as they happen.

The cache and the multiwatcher already count what they do (`CacheStats`,
`WatcherStats`); a collector turns those into metrics when Prometheus scrapes,
so the hot path pays nothing for them. RPCs are counted and timed by an
interceptor, by method and status code. Each server has its own registry, so
several servers in one process (tests) do not collide.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, Final

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from genconf.api.interceptor import HandlerInterceptor
from genconf.readside.supervisor import ReadSide

LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


class ReadSideCollector(Collector):
    """Cache and change-stream figures, read from their stats at scrape time."""

    def __init__(self, read: ReadSide) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        cache = self.read.cache.statistics()
        watcher = self.read.watcher.stats
        # A revision is 64 bits (seconds << 32 | increment): more than a float sample
        # holds exactly, so export its two halves.
        yield GaugeMetricFamily(
            "genconf_cache_cluster_time_seconds",
            "Cluster time (seconds part of the revision) the cache has applied",
            cache.revision >> 32,
        )
        yield GaugeMetricFamily(
            "genconf_cache_cluster_time_increment",
            "Increment part of the revision the cache has applied",
            cache.revision & 0xFFFFFFFF,
        )
        yield GaugeMetricFamily(
            "genconf_change_stream_lag_seconds",
            "Age of the newest change applied when the stream last had events",
            watcher.lag_seconds,
        )
        counters = {
            "genconf_change_events": ("Change events read from the stream", watcher.events),
            "genconf_resyncs": ("Full reloads after history was lost", watcher.resyncs),
            "genconf_stream_resumes": ("Change stream resumes after errors", watcher.resumes),
            "genconf_batches_applied": ("Transactions applied to the cache", cache.batches_applied),
            "genconf_deltas_applied": ("Deltas applied to the cache", cache.deltas_applied),
            "genconf_notifications": ("Config updates offered to watchers", cache.notifications),
            "genconf_coalesced_updates": (
                "Updates a slow watcher skipped because a newer one replaced them",
                cache.coalesced,
            ),
            "genconf_feed_overflows": (
                "Admin feeds ended RESOURCE_EXHAUSTED because their buffer was full",
                cache.feed_overflows,
            ),
            "genconf_unreadable_events": (
                "Change events too large to read, each skipped by a reload",
                watcher.unreadable_events,
            ),
            "genconf_unreadable_documents": (
                "Documents another tool wrote that genconf cannot read, left out",
                watcher.unreadable_documents,
            ),
        }
        for name, (doc, value) in counters.items():
            yield CounterMetricFamily(name, doc, value=value)
        watchers = GaugeMetricFamily("genconf_watchers", "Open watches by kind", labels=["kind"])
        watchers.add_metric(["config"], cache.watchers)
        watchers.add_metric(["admin_feed"], cache.feeds)
        yield watchers
        yield GaugeMetricFamily(
            "genconf_tokens", "Tokens known to this server", len(self.read.tokens)
        )
        yield GaugeMetricFamily(
            "genconf_ring_bytes",
            "Estimated bytes of recent changes the admin feed keeps for resuming",
            cache.ring_bytes,
        )


class Metrics:
    """One server's registry, RPC instruments and HTTP endpoint."""

    def __init__(self, read: ReadSide) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(ReadSideCollector(read))
        self.rpcs = Counter(
            "genconf_rpc",
            "RPCs finished, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "genconf_rpc_seconds",
            "Unary RPC latency by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Labelled children by (method as called, code): looked up once, not per RPC.
        self._counted: dict[tuple[str, grpc.StatusCode | None], Counter] = {}
        self._timed: dict[str, Histogram] = {}

    @contextmanager
    def serve_http(self, listen: str) -> Iterator[str]:
        """Serve ``/metrics`` on ``listen`` (HOST:PORT; port 0 picks one); yields the address."""
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        server, thread = start_http_server(int(port), addr=host, registry=self.registry)
        try:
            yield f"{host}:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

    def record(self, method: str, code: grpc.StatusCode | None, seconds: float | None) -> None:
        counter = self._counted.get((method, code))
        if counter is None:
            counter = self._counted[method, code] = self.rpcs.labels(
                _label(method), (code or grpc.StatusCode.OK).name
            )
        counter.inc()
        if seconds is not None:
            histogram = self._timed.get(method)
            if histogram is None:
                histogram = self._timed[method] = self.latency.labels(_label(method))
            histogram.observe(seconds)


def _label(method: str) -> str:
    return method.lstrip("/").removeprefix("genconf.v1.")


class MetricsInterceptor(HandlerInterceptor):
    """Counts every RPC by method and final status, and times the unary ones.

    Streams written with ``context.write`` (the health service's Watch) pass
    uncounted: only generator streams can be followed to their end here."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def wrap(
        self, handler: grpc.RpcMethodHandler, method: str, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        metrics = self.metrics
        if handler.unary_unary is not None:
            behavior = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                start = time.perf_counter()
                code: grpc.StatusCode | None = grpc.StatusCode.UNKNOWN
                try:
                    result = await behavior(request, context)
                    code = context.code()
                    return result
                except BaseException:
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                finally:
                    metrics.record(method, code, time.perf_counter() - start)

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            stream_behavior = handler.unary_stream

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                code: grpc.StatusCode | None = grpc.StatusCode.CANCELLED
                try:
                    async for item in stream_behavior(request, context):
                        yield item
                    code = context.code()
                except BaseException:
                    code = context.code() or grpc.StatusCode.CANCELLED
                    raise
                finally:
                    metrics.record(method, code, None)

            return grpc.unary_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler
