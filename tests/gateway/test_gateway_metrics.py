"""Prometheus metrics: what ``observe`` counts and what a scrape shows."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import prometheus_client
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from spendgate.bedrock.sigv4 import Credentials
from spendgate.events import Event
from spendgate.gateway.app import create_app
from spendgate.gateway.metrics import MAX_MODELS, Metrics, Summary
from spendgate.settings import GatewaySettings
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY
from spendgate.store import WriterStats, open_store

from helpers import serve

T0 = datetime(2025, 6, 1, tzinfo=UTC)
NOVA = "amazon.nova-lite-v1:0"


def event(**fields: object) -> Event:
    values: dict[str, object] = {
        "ts": T0,
        "operation": "Converse",
        "model_id": NOVA,
        "base_model": NOVA,
        "latency_ms": 120,
        "input_tokens": 100,
        "output_tokens": 20,
        "cost_usd": Decimal("0.0003"),
    }
    values.update(fields)
    return Event(**values)  # type: ignore[arg-type]


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed back: (name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


def stats(**counts: int) -> WriterStats:
    base = dict.fromkeys(
        ("queued", "written", "journaled", "replayed", "overflowed", "db_errors", "rejected"), 0
    )
    return WriterStats(**{**base, **counts}, lost=0, last_error=None)


def test_observe_counts_requests_latency_tokens_and_cost() -> None:
    m = Metrics()
    m.observe(event())
    m.observe(event(cache_read_tokens=50, cache_write_5m_tokens=7, cache_write_1h_tokens=3))
    m.observe(event(status="error", error_type="ThrottlingException", cost_usd=Decimal(0)))
    labels = {"operation": "Converse", "model": NOVA}
    assert value(m, "spendgate_requests_total", **labels, status="ok") == 2
    assert value(m, "spendgate_requests_total", **labels, status="error") == 1
    assert value(m, "spendgate_request_duration_seconds_count", **labels) == 3
    assert value(m, "spendgate_request_duration_seconds_sum", **labels) == pytest.approx(0.36)
    assert value(m, "spendgate_request_duration_seconds_bucket", **labels, le="0.1") == 0
    assert value(m, "spendgate_request_duration_seconds_bucket", **labels, le="0.25") == 3
    for kind, count in [("input", 300), ("output", 60), ("cache_read", 50)]:
        assert value(m, "spendgate_tokens_total", model=NOVA, type=kind) == count
    assert value(m, "spendgate_tokens_total", model=NOVA, type="cache_write_5m") == 7
    assert value(m, "spendgate_tokens_total", model=NOVA, type="cache_write_1h") == 3
    assert value(m, "spendgate_cost_usd_total", model=NOVA) == pytest.approx(0.0006)
    assert value(m, "spendgate_upstream_errors_total", type="ThrottlingException") == 1
    assert value(m, "spendgate_time_to_first_byte_seconds_count", **labels) is None  # unary


def test_streams_record_time_to_first_byte() -> None:
    m = Metrics()
    m.observe(event(operation="ConverseStream", streamed=True, ttfb_ms=40))
    m.observe(event(operation="ConverseStream", streamed=True, ttfb_ms=400, status="partial"))
    labels = {"operation": "ConverseStream", "model": NOVA}
    assert value(m, "spendgate_time_to_first_byte_seconds_count", **labels) == 2
    assert value(m, "spendgate_time_to_first_byte_seconds_bucket", **labels, le="0.05") == 1
    assert value(m, "spendgate_requests_total", **labels, status="partial") == 1


def test_rejections_unpriced_calls_and_unknown_models() -> None:
    m = Metrics()
    m.observe(
        event(
            status="rejected",
            error_type="AccessDeniedException",
            model_id=None,
            base_model=None,
            operation="InvokeModel",
            cost_usd=Decimal(0),
        )
    )
    m.observe(event(base_model=None, model_id="acme.new-model-v9", unpriced=True, cost_usd=None))
    assert value(m, "spendgate_rejected_total", type="AccessDeniedException") == 1
    assert value(m, "spendgate_upstream_errors_total", type="AccessDeniedException") is None
    assert (
        value(
            m,
            "spendgate_requests_total",
            operation="InvokeModel",
            model="unknown",
            status="rejected",
        )
        == 1
    )
    assert value(m, "spendgate_unpriced_calls_total", model="acme.new-model-v9") == 1
    assert value(m, "spendgate_unpriced_calls_total", model=NOVA) is None


def test_model_labels_are_capped_so_invented_ids_cannot_explode_the_series() -> None:
    m = Metrics()
    for i in range(MAX_MODELS + 50):
        m.observe(event(base_model=None, model_id=f"junk.model-{i}"))
    models = {
        dict(labels)["model"] for (name, labels) in samples(m) if name == "spendgate_requests_total"
    }
    assert len(models) == MAX_MODELS + 1 and "other" in models
    assert (
        value(m, "spendgate_requests_total", operation="Converse", model="other", status="ok") == 50
    )


def test_writer_and_upstream_figures_are_read_at_scrape_time() -> None:
    current = {"stats": stats(queued=3, written=10, journaled=2, overflowed=1)}
    m = Metrics(
        writer_stats=lambda: current["stats"], upstream_stats=lambda: {"idle": 2, "in_use": 1}
    )
    assert value(m, "spendgate_event_queue_depth") == 3
    assert value(m, "spendgate_events_written_total") == 10
    assert value(m, "spendgate_events_journaled_total") == 2
    assert value(m, "spendgate_events_overflowed_total") == 1
    assert value(m, "spendgate_upstream_connections", state="in_use") == 1
    current["stats"] = stats(written=11)
    assert value(m, "spendgate_events_written_total") == 11
    assert value(m, "spendgate_event_queue_depth") == 0


def test_each_metrics_object_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.observe(event())
    assert value(a, "spendgate_requests_total", operation="Converse", model=NOVA, status="ok") == 1
    assert (
        value(b, "spendgate_requests_total", operation="Converse", model=NOVA, status="ok") is None
    )
    global_names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("spendgate") for name in global_names)


def test_the_summary_line_tells_what_happened_and_stays_quiet_when_idle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    m = Metrics(writer_stats=lambda: stats(queued=1, journaled=4))
    summary = Summary(m)
    with caplog.at_level(logging.INFO, logger="spendgate.gateway.summary"):
        summary.emit()
        assert caplog.records == []
        m.observe(event())
        m.observe(event(status="rejected", error_type="AccessDeniedException", cost_usd=None))
        summary.emit()
        summary.emit()
    (record,) = caplog.records
    assert "2 calls (0 errors, 1 rejected, 0 partial), 200 input / 40 output tokens" in (
        record.getMessage()
    )
    assert record.__dict__["cost_usd"] == "0.0003"
    assert record.__dict__["journaled"] == 4 and record.__dict__["queued"] == 1


def test_the_gateway_serves_metrics_for_real_calls(
    sim_factory: Callable[..., str], tmp_path: Path
) -> None:
    settings = GatewaySettings(
        db=f"sqlite:///{tmp_path}/gw.db",
        bedrock_endpoint=sim_factory(),
        allow_unauthenticated=True,
        journal_path=tmp_path / "journal.jsonl",
        flush_interval_s=0.05,
    )
    app = create_app(
        settings,
        store=open_store(settings.db),
        credentials=lambda: Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY),
    )
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    with serve(app) as url:
        assert requests.post(f"{url}/model/{NOVA}/converse", json=body).status_code == 200
        stream = requests.post(f"{url}/model/{NOVA}/converse-stream", json=body)
        assert stream.status_code == 200
        for _ in range(100):  # the writer flushes every 50 ms
            r = requests.get(f"{url}/metrics")
            if "spendgate_events_written_total 2.0" in r.text:
                break
            time.sleep(0.05)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert r.headers["x-spendgate-request-id"]
    text = r.text
    assert (
        f'spendgate_requests_total{{model="{NOVA}",operation="Converse",status="ok"}} 1.0' in text
    )
    ttfb = "spendgate_time_to_first_byte_seconds_count"
    assert f'{ttfb}{{model="{NOVA}",operation="ConverseStream"}} 1.0' in text
    assert 'spendgate_tokens_total{model="amazon.nova-lite-v1:0",type="output"}' in text
    assert "spendgate_events_written_total 2.0" in text
    assert "spendgate_event_queue_depth 0.0" in text
