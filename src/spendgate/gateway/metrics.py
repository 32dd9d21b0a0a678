"""Prometheus metrics for ``GET /metrics``, and a periodic summary log line.

``Metrics.observe(event)`` runs once per finished call, on the hot path: it touches only cached
label children (no ``labels()`` lookup after the first call of an operation/model pair), a few
microseconds in all. Writer and upstream-pool figures are read when Prometheus scrapes. Every
``Metrics`` has its own ``CollectorRegistry``; nothing is registered globally.

Model labels are the catalog model (``base_model``) when known, else the model id as sent; past
``MAX_MODELS`` distinct values new ones are counted as ``other``, so a client inventing model
ids cannot blow up the series count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from spendgate.events import Event
from spendgate.store.writer import WriterStats

log = logging.getLogger("spendgate.gateway.summary")

MAX_MODELS = 200
MAX_SERIES = 2000
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
WRITER_COUNTERS = ("written", "journaled", "replayed", "overflowed", "db_errors", "rejected")


class _Series:
    """The label children of one (operation, model) pair."""

    __slots__ = ("cost", "labels", "latency", "requests", "tokens", "ttfb", "unpriced")

    def __init__(self, metrics: Metrics, operation: str, model: str) -> None:
        self.labels = (operation, model)
        self.requests: dict[str, Counter] = {}
        self.latency = metrics.latency.labels(operation, model)
        self.ttfb: Histogram | None = None  # streams only
        self.tokens = tuple(metrics.tokens.labels(model, kind) for kind in TOKEN_TYPES)
        self.cost = metrics.cost.labels(model)
        self.unpriced = metrics.unpriced.labels(model)


@dataclass(slots=True)
class Window:
    """Plain totals since the last summary line."""

    calls: int = 0
    errors: int = 0
    rejected: int = 0
    partial: int = 0
    unpriced: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    cost_usd: Decimal = Decimal(0)


class Metrics:
    """The gateway's Prometheus metrics; ``observe`` each finished call's event."""

    def __init__(
        self,
        *,
        writer_stats: Callable[[], WriterStats] | None = None,
        upstream_stats: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "spendgate_requests",
            "Runtime calls finished",
            ["operation", "model", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "spendgate_request_duration_seconds",
            "Time from request to the last byte relayed",
            ["operation", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "spendgate_time_to_first_byte_seconds",
            "Streams: time to Bedrock's first byte",
            ["operation", "model"],
            buckets=TTFB_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("spendgate_tokens", "Tokens metered", ["model", "type"], registry=r)
        self.cost = Counter("spendgate_cost_usd", "Metered cost in USD", ["model"], registry=r)
        self.unpriced = Counter(
            "spendgate_unpriced_calls",
            "Calls with no price (unknown model or usage)",
            ["model"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "spendgate_upstream_errors",
            "Calls Bedrock failed or could not be reached, by type",
            ["type"],
            registry=r,
        )
        self.rejections = Counter(
            "spendgate_rejected",
            "Calls the gateway refused before forwarding, by type",
            ["type"],
            registry=r,
        )
        r.register(_Pipeline(writer_stats, upstream_stats))
        self.writer_stats = writer_stats
        self.window = Window()
        self._series: dict[tuple[str | None, str | None], _Series] = {}
        self._errors: dict[tuple[str, str | None], Counter] = {}
        self._models: set[str] = set()

    def observe(self, event: Event) -> None:
        """Count one finished call. Cheap: cached children only."""
        series = self._series.get((event.operation, event.base_model or event.model_id))
        if series is None:
            series = self._new_series(event)
        status = event.status
        counter = series.requests.get(status)
        if counter is None:
            counter = series.requests[status] = self.requests.labels(*series.labels, status)
        counter.inc()
        if event.latency_ms is not None:
            series.latency.observe(event.latency_ms / 1000)
        if event.streamed and event.ttfb_ms is not None:
            if series.ttfb is None:
                series.ttfb = self.ttfb.labels(*series.labels)
            series.ttfb.observe(event.ttfb_ms / 1000)
        self._count_tokens(series, event)
        if event.cost_usd:
            series.cost.inc(float(event.cost_usd))
            self.window.cost_usd += event.cost_usd
        if event.unpriced:
            series.unpriced.inc()
            self.window.unpriced += 1
        if event.error_type is not None:
            self._error(status, event.error_type).inc()
        self._count_window(event)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def take_window(self) -> Window:
        """The totals since the last call, and a fresh window."""
        window, self.window = self.window, Window()
        return window

    def _count_tokens(self, series: _Series, event: Event) -> None:
        counts = (
            event.input_tokens,
            event.output_tokens,
            event.cache_read_tokens,
            event.cache_write_5m_tokens,
            event.cache_write_1h_tokens,
        )
        for child, count in zip(series.tokens, counts, strict=True):
            if count:
                child.inc(count)

    def _count_window(self, event: Event) -> None:
        window = self.window
        window.calls += 1
        window.input_tokens += event.input_tokens
        window.output_tokens += event.output_tokens
        window.latency_ms += event.latency_ms or 0
        if event.status == "error":
            window.errors += 1
        elif event.status == "rejected":
            window.rejected += 1
        elif event.status == "partial":
            window.partial += 1

    def _new_series(self, event: Event) -> _Series:
        series = _Series(self, event.operation or "unknown", self._model(event))
        if len(self._series) < MAX_SERIES:
            self._series[(event.operation, event.base_model or event.model_id)] = series
        return series

    def _model(self, event: Event) -> str:
        model = event.base_model or event.model_id or "unknown"
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return "other"
        self._models.add(model)
        return model

    def _error(self, status: str, error_type: str) -> Counter:
        child = self._errors.get((status, error_type))
        if child is None:
            family = self.rejections if status == "rejected" else self.upstream_errors
            child = family.labels(error_type if len(self._errors) < MAX_MODELS else "other")
            self._errors[(status, error_type)] = child
        return child


class _Pipeline:
    """Collector: the event writer's and the upstream pool's figures, read at scrape time."""

    def __init__(
        self,
        writer: Callable[[], WriterStats] | None,
        upstream: Callable[[], Mapping[str, int]] | None,
    ) -> None:
        self._writer = writer
        self._upstream = upstream

    def collect(self) -> Iterator[Metric]:
        if self._writer is not None:
            stats = self._writer()
            yield GaugeMetricFamily(
                "spendgate_event_queue_depth", "Events waiting for the writer", stats.queued
            )
            for name in WRITER_COUNTERS:
                yield CounterMetricFamily(
                    f"spendgate_events_{name}", f"Event writer: events {name}", getattr(stats, name)
                )
            yield CounterMetricFamily(
                "spendgate_events_lost", "Events neither database nor journal took", stats.lost
            )
        if self._upstream is not None:
            pool = GaugeMetricFamily(
                "spendgate_upstream_connections", "Upstream connections by state", labels=["state"]
            )
            stats_up = self._upstream()
            for state in ("idle", "in_use"):
                pool.add_metric([state], stats_up.get(state, 0))
            yield pool


def metrics_route(metrics: Metrics) -> Route:
    async def endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", endpoint, methods=["GET"])


class Summary:
    """Logs one line every ``interval_s`` with what the gateway did since the last one (none
    when nothing happened)."""

    def __init__(self, metrics: Metrics, *, interval_s: float = 60.0) -> None:
        self.metrics = metrics
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="spendgate-summary")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.emit()

    def emit(self) -> None:
        window = self.metrics.take_window()
        if not window.calls:
            return
        extra = {f.name: getattr(window, f.name) for f in fields(window)}
        extra["cost_usd"] = str(window.cost_usd)
        writer = self.metrics.writer_stats() if self.metrics.writer_stats else None
        if writer is not None:
            extra |= {"queued": writer.queued, "journaled": writer.journaled, "lost": writer.lost}
        log.info(
            "%d calls (%d errors, %d rejected, %d partial), %d input / %d output tokens, $%s",
            window.calls,
            window.errors,
            window.rejected,
            window.partial,
            window.input_tokens,
            window.output_tokens,
            window.cost_usd,
            extra=extra,
        )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.emit()
