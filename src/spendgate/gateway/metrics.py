"""Prometheus metrics for ``GET /metrics``, and a periodic summary log line.

``Metrics.observe(event)`` runs once per finished call, on the hot path, so it only adds to
plain numbers: the series of an operation/model pair is found with one dict lookup, and nothing
takes a lock (observe and scrapes both run on the event loop). ``_Calls`` turns the numbers into
Prometheus counters and histograms when Prometheus scrapes; writer and upstream-pool figures are
read then too. Every ``Metrics`` has its own ``CollectorRegistry``; nothing is registered
globally.

Model labels are the catalog model (``base_model``) when known, else the model id as sent; past
``MAX_MODELS`` distinct values new ones are counted as ``other``, so a client inventing model
ids cannot blow up the series count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from itertools import accumulate

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
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


class _Histogram:
    """Observations of one label set; a bucket counts the values <= its bound."""

    __slots__ = ("bounds", "counts", "created", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, float]]:
        """(upper bound as Prometheus writes it, cumulative count), ending with ``+Inf``."""
        bounds = [str(float(b)) for b in self.bounds] + ["+Inf"]
        return list(zip(bounds, accumulate(self.counts), strict=True))


class _Model:
    """Totals of one model label: tokens by type, cost, unpriced calls."""

    __slots__ = ("cost", "created", "tokens", "unpriced")

    def __init__(self) -> None:
        self.tokens = [0] * len(TOKEN_TYPES)
        self.cost = 0.0
        self.unpriced = 0
        self.created = time.time()


class _Series:
    """The numbers of one (operation, model) pair."""

    __slots__ = ("created", "labels", "latency", "model", "requests", "ttfb")

    def __init__(self, operation: str, model: str, totals: _Model) -> None:
        self.labels = (operation, model)
        self.model = totals
        self.requests: dict[str, int] = {}  # by status
        self.latency = _Histogram(LATENCY_BUCKETS)
        self.ttfb: _Histogram | None = None  # streams only
        self.created = time.time()


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
    """The gateway's Prometheus metrics; ``observe`` each finished call's event (on the loop)."""

    def __init__(
        self,
        *,
        writer_stats: Callable[[], WriterStats] | None = None,
        upstream_stats: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_Calls(self))
        self.registry.register(_Pipeline(writer_stats, upstream_stats))
        self.writer_stats = writer_stats
        self.window = Window()
        self.series: dict[tuple[str, str], _Series] = {}  # by labels
        self.models: dict[str, _Model] = {}  # by model label
        self.rejected: dict[str, int] = {}  # by error type
        self.upstream_errors: dict[str, int] = {}  # by error type
        self._found: dict[tuple[str | None, str | None], _Series] = {}  # by event fields
        self._error_types: set[str] = set()

    def observe(self, event: Event) -> None:
        """Count one finished call."""
        series = self._found.get((event.operation, event.base_model or event.model_id))
        if series is None:
            series = self._new_series(event)
        status = event.status
        series.requests[status] = series.requests.get(status, 0) + 1
        if event.latency_ms is not None:
            series.latency.observe(event.latency_ms / 1000)
        if event.streamed and event.ttfb_ms is not None:
            if series.ttfb is None:
                series.ttfb = _Histogram(TTFB_BUCKETS)
            series.ttfb.observe(event.ttfb_ms / 1000)
        totals = series.model
        tokens = totals.tokens
        tokens[0] += event.input_tokens
        tokens[1] += event.output_tokens
        tokens[2] += event.cache_read_tokens
        tokens[3] += event.cache_write_5m_tokens
        tokens[4] += event.cache_write_1h_tokens
        if event.cost_usd:
            totals.cost += float(event.cost_usd)
            self.window.cost_usd += event.cost_usd
        if event.unpriced:
            totals.unpriced += 1
            self.window.unpriced += 1
        if event.error_type is not None:
            self._count_error(status, event.error_type)
        self._count_window(event)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def take_window(self) -> Window:
        """The totals since the last call, and a fresh window."""
        window, self.window = self.window, Window()
        return window

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
        operation, model = event.operation or "unknown", self._model(event)
        series = self.series.get((operation, model))
        if series is None:
            totals = self.models.setdefault(model, _Model())
            series = self.series[(operation, model)] = _Series(operation, model, totals)
        if len(self._found) < MAX_SERIES:
            self._found[(event.operation, event.base_model or event.model_id)] = series
        return series

    def _model(self, event: Event) -> str:
        model = event.base_model or event.model_id or "unknown"
        if model in self.models:
            return model
        if len(self.models) >= MAX_MODELS:
            return "other"
        return model

    def _count_error(self, status: str, error_type: str) -> None:
        if error_type not in self._error_types:
            if len(self._error_types) >= MAX_MODELS:
                error_type = "other"
            self._error_types.add(error_type)
        counts = self.rejected if status == "rejected" else self.upstream_errors
        counts[error_type] = counts.get(error_type, 0) + 1


class _Calls:
    """Collector: ``Metrics``' numbers as Prometheus counters and histograms."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        series = list(m.series.values())
        models = list(m.models.items())
        requests = CounterMetricFamily(
            "spendgate_requests", "Runtime calls finished", labels=["operation", "model", "status"]
        )
        for s in series:
            for status, count in list(s.requests.items()):
                requests.add_metric([*s.labels, status], count, created=s.created)
        yield requests
        yield _histogram(
            "spendgate_request_duration_seconds",
            "Time from request to the last byte relayed",
            [(s.labels, s.latency) for s in series],
        )
        yield _histogram(
            "spendgate_time_to_first_byte_seconds",
            "Streams: time to Bedrock's first byte",
            [(s.labels, s.ttfb) for s in series if s.ttfb is not None],
        )
        tokens = CounterMetricFamily("spendgate_tokens", "Tokens metered", labels=["model", "type"])
        cost = CounterMetricFamily("spendgate_cost_usd", "Metered cost in USD", labels=["model"])
        unpriced = CounterMetricFamily(
            "spendgate_unpriced_calls",
            "Calls with no price (unknown model or usage)",
            labels=["model"],
        )
        for model, totals in models:
            for kind, count in zip(TOKEN_TYPES, totals.tokens, strict=True):
                tokens.add_metric([model, kind], count, created=totals.created)
            cost.add_metric([model], totals.cost, created=totals.created)
            unpriced.add_metric([model], totals.unpriced, created=totals.created)
        yield from (tokens, cost, unpriced)
        yield _by_type(
            "spendgate_upstream_errors",
            "Calls Bedrock failed or could not be reached, by type",
            m.upstream_errors,
        )
        yield _by_type(
            "spendgate_rejected", "Calls the gateway refused before forwarding, by type", m.rejected
        )


def _histogram(
    name: str, documentation: str, items: list[tuple[tuple[str, str], _Histogram]]
) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["operation", "model"])
    for (operation, model), histogram in items:
        family.add_metric([operation, model], histogram.buckets(), histogram.total)
        labels = {"operation": operation, "model": model}
        family.add_sample(f"{name}_created", labels, histogram.created)
    return family


def _by_type(name: str, documentation: str, counts: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=["type"])
    for error_type, count in list(counts.items()):
        family.add_metric([error_type], count)
    return family


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
