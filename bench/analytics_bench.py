"""Analytics benchmark: load N realistic synthetic events, then time 30-day spend queries.

    .venv/bin/python bench/analytics_bench.py --db sqlite:////tmp/spend-bench.db --events 10000000
    .venv/bin/python bench/analytics_bench.py --db postgresql://postgres@127.0.0.1/bench \
        --events 10000000

Events are inserted in bulk, then every rollup is rebuilt from them with the writer's own SQL
(``store.rollups.rebuild``: stage, fold and seal, a day at a time); ``--writer`` loads through
``Store.insert_events`` instead (slower). ``--write-cost N`` only measures the CPU per event
of each step of keeping the rollups. A database that already holds at least
``--events`` events is not reloaded (``--reload`` empties it first). Every query runs once
(``first``: the slots it needs that the in-memory rollup cache does not hold yet are summed in
SQL while the cache's worker loads them; ``loading``: the wait for that worker), then
``--repeat`` times; the median and the worst are printed, with the parts that answered it and
the cache slots loaded. A repeated question finds its cached parts' sums kept (the same slots
with the same tokens); ``--no-reuse`` keeps none, so every asking sums the cached slots (what
a new question over warm slots costs). What is timed is the API's answer, the JSON body of
``GET /api/v1/spend``; the median of ``spend`` (``SpendRow``s, for the dashboard and the CLI)
is printed beside it. ``--no-cache`` answers from SQL only.

The synthetic organisation: 8 departments, 40 projects, 80 agents, 600 users, 12 applications,
3 environments, 120 keys, 9 models over 3 regions, 4 operations (each agent mostly calls one
model with one operation in one region, and 10 % of the time something else); statuses 97 % ok,
2 % error, 0.5 % partial, 0.5 % rejected; ~1 % of events unpriced; sessions of ~20 calls; log-normal
token counts; latency growing with output tokens. Traffic follows a day/night and weekday cycle.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from spendgate.analytics import SpendQuery, rehearse, spend
from spendgate.events import Event
from spendgate.store import Store, open_store, rollup_cache
from spendgate.store.bulk import EventInserter
from spendgate.store.engine import BEGIN_MODE
from spendgate.store.rollup_cache import DEFAULT_BYTES
from spendgate.store.rollups import RollupWriter, rebuild
from spendgate.store.schema import events, metadata
from spendgate.store.spend import plan
from spendgate.web.api import spend_body

END = datetime(2026, 11, 1, tzinfo=UTC)

# (base model, provider, family, input $/1M, output $/1M, share of calls)
MODELS = (
    ("anthropic.claude-sonnet-4-5", "anthropic", "claude", 3.0, 15.0, 0.30),
    ("anthropic.claude-haiku-4-5", "anthropic", "claude", 1.0, 5.0, 0.25),
    ("anthropic.claude-opus-4-1", "anthropic", "claude", 15.0, 75.0, 0.05),
    ("amazon.nova-pro-v1", "amazon", "nova", 0.8, 3.2, 0.10),
    ("amazon.nova-lite-v1", "amazon", "nova", 0.06, 0.24, 0.12),
    ("amazon.nova-micro-v1", "amazon", "nova", 0.035, 0.14, 0.08),
    ("meta.llama3-3-70b-instruct-v1", "meta", "llama", 0.72, 0.72, 0.04),
    ("mistral.mistral-large-2407-v1", "mistral", "mistral", 2.0, 6.0, 0.03),
    ("cohere.command-r-plus-v1", "cohere", "command", 3.0, 15.0, 0.03),
)
REGIONS = (("us-east-1", 0.6), ("us-west-2", 0.3), ("eu-west-1", 0.1))
OPERATIONS = (("Converse", 0.45), ("ConverseStream", 0.35), ("InvokeModel", 0.15))
OPERATIONS += (("InvokeModelWithResponseStream", 0.05),)
STATUSES = (("ok", 0.97), ("error", 0.02), ("partial", 0.005), ("rejected", 0.005))


@dataclass(frozen=True, slots=True)
class Owner:
    """A user and where their calls are attributed."""

    user_id: str
    department: str
    project: str
    agents: tuple[tuple[str, int, str, str], ...]  # (agent, model index, operation, region)
    application: str
    environment: str
    cost_center: str
    key_id: str


def organisation(rng: random.Random) -> list[Owner]:
    departments = [f"dept-{i}" for i in range(8)]
    projects = [(f"proj-{i}", departments[i % 8]) for i in range(40)]
    weights = [m[5] for m in MODELS]
    agents = [
        (
            f"agent-{n}",
            rng.choices(range(len(MODELS)), weights)[0],
            _pick(rng, OPERATIONS),
            _pick(rng, REGIONS),
        )
        for n in range(80)
    ]
    owners = []
    for i in range(600):
        project, department = projects[i % 40]
        pnum = i % 40
        owners.append(
            Owner(
                user_id=f"user-{i}",
                department=department,
                project=project,
                agents=(agents[pnum * 2], agents[pnum * 2 + 1]),
                application=f"app-{pnum % 12}",
                environment=rng.choices(("prod", "staging", "dev"), (0.7, 0.2, 0.1))[0],
                cost_center=f"cc-{departments.index(department)}",
                key_id=f"key-{i % 120}",
            )
        )
    return owners


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([t[0] for t in table], [t[1] for t in table])[0]


def _activity(moment: datetime) -> float:
    """Relative traffic at ``moment``: a day/night cycle, quieter weekends."""
    day = 0.35 + 0.65 * math.sin(math.pi * max(0.0, (moment.hour - 6) / 14)) ** 2
    return day * (0.4 if moment.weekday() >= 5 else 1.0)


def generate(count: int, days: int, seed: int = 7) -> Iterator[Event]:
    """``count`` events spread over the ``days`` days before ``END``, in time order."""
    rng = random.Random(seed)
    owners = organisation(rng)
    hours = [END - timedelta(hours=h) for h in range(days * 24, 0, -1)]
    weights = [_activity(h) for h in hours]
    total = sum(weights)
    produced = 0
    session: dict[str, tuple[str, int]] = {}
    for index, hour in enumerate(hours):
        target = round(count * sum(weights[: index + 1]) / total) - produced
        offsets = sorted(rng.random() * 3600 for _ in range(target))
        for offset in offsets:
            owner = rng.choice(owners)
            yield _event(rng, owner, hour + timedelta(seconds=offset), session)
        produced += target


def _event(
    rng: random.Random, owner: Owner, ts: datetime, sessions: dict[str, tuple[str, int]]
) -> Event:
    agent, model_index, operation, region = rng.choice(owner.agents)
    if rng.random() < 0.1:  # now and then an agent tries another model, operation or region
        model_index = rng.randrange(len(MODELS))
        operation, region = _pick(rng, OPERATIONS), _pick(rng, REGIONS)
    model = MODELS[model_index]
    status = _pick(rng, STATUSES)
    sid, left = sessions.get(owner.user_id, ("", 0))
    if left <= 0:
        sid, left = f"sess-{rng.getrandbits(48):012x}", rng.randint(5, 35)
    sessions[owner.user_id] = (sid, left - 1)
    input_tokens = int(rng.lognormvariate(7.0, 1.0))
    output_tokens = int(rng.lognormvariate(5.5, 0.9)) if status != "error" else 0
    cache_read = int(input_tokens * rng.random() * 3) if rng.random() < 0.3 else 0
    cache_write = int(input_tokens * 0.5) if rng.random() < 0.05 else 0
    unpriced = rng.random() < 0.01
    cost = None
    if not unpriced and status not in ("error", "rejected"):
        rate_in, rate_out = model[3], model[4]
        pusd = round(
            (input_tokens + cache_write * 1.25 + cache_read * 0.1) * rate_in * 1e6
            + output_tokens * rate_out * 1e6
        )
        cost = Decimal(pusd).scaleb(-12)
    return Event(
        ts=ts,
        operation=operation,
        model_id=f"us.{model[0]}:0",
        base_model=model[0],
        provider=model[1],
        model_family=model[2],
        region=region,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_5m_tokens=cache_write,
        latency_ms=int(200 + output_tokens * rng.uniform(8, 30)),
        status=status,
        cost_usd=cost,
        unpriced=unpriced,
        key_id=owner.key_id,
        department=owner.department,
        project=owner.project,
        agent=agent,
        user_id=owner.user_id,
        application=owner.application,
        environment=owner.environment,
        cost_center=owner.cost_center,
        session_id=sid,
        workflow_id=f"wf-{sid[-6:]}" if rng.random() < 0.2 else None,
    )


def stored(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(events)).scalar_one())


def load(store: Store, total: int, have: int, days: int, batch_size: int, *, writer: bool) -> None:
    """Insert the events ``have`` … ``total`` of the (deterministic) synthetic series: through
    ``Store.insert_events`` (``writer``), or straight into ``events`` (rollups rebuilt after)."""
    started = time.perf_counter()
    batch: list[Event] = []
    done = 0
    inserter = EventInserter(store.engine)

    def insert(batch: list[Event]) -> int:
        if not batch:
            return 0
        if writer:
            return store.insert_events(batch)
        with store.engine.begin() as connection:
            return inserter.insert(connection, batch)

    for event in itertools.islice(generate(total, days), have, None):
        batch.append(event)
        if len(batch) >= batch_size:
            done += insert(batch)
            batch.clear()
            if done % (batch_size * 100) == 0:
                rate = done / (time.perf_counter() - started)
                print(f"  loaded {done:,} events ({rate:,.0f}/s)", flush=True)
    done += insert(batch)
    elapsed = time.perf_counter() - started
    print(f"loaded {done:,} events in {elapsed:,.0f} s ({done / elapsed:,.0f} events/s)")
    if not writer:
        started = time.perf_counter()
        connection = store.engine.connect().execution_options(**{BEGIN_MODE: "IMMEDIATE"})
        with connection, connection.begin():
            rebuild(connection, lambda day, last: print(f"  rolled up {day:%Y-%m-%d}", flush=True))
        print(f"rebuilt the rollups in {time.perf_counter() - started:,.0f} s")
    if store.engine.dialect.name == "postgresql":
        # What autovacuum does on a running server, done now (it may be off, as on the
        # project's machines): planner statistics (without them the raw-event parts are
        # planned badly: ~450 ms a query on freshly loaded data), and the dead rows the
        # rebuild's folds left in spend_pending removed (2.5 M of them, 1 GB, made every
        # query's pending part 10 ms slower). SQLite is measured as a deployment runs it.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")


def write_cost(url: str, count: int, batch_size: int) -> None:
    """CPU of this process per event to store ``count`` events in ``batch_size`` batches: the
    events alone; through ``Store.insert_events`` (each batch also staged into
    ``spend_pending``); the fold that moves them into every hourly rollup (every few seconds
    in the gateway); and sealing their days into the daily rollups (once a day). Twice: the
    events spread over two days (nearly every event its own rollup key: the worst case), then
    the same events squeezed into one hour (as a busy gateway's few seconds between folds)."""
    spread = list(itertools.islice(generate(count, 2), count))
    hour = END - timedelta(hours=1)
    squeezed = [
        replace(e, event_id=f"{e.event_id}-h", ts=hour + timedelta(seconds=3600 * i / count))
        for i, e in enumerate(spread)
    ]
    store = open_store(url)
    try:
        for label, made in (("spread over 2 days", spread), ("within one hour", squeezed)):
            print(f"{label}:")
            _write_cost(store, made, batch_size)
    finally:
        store.close()


def _write_cost(store: Store, made: list[Event], batch_size: int) -> None:
    count = len(made)
    batches = [made[i : i + batch_size] for i in range(0, count, batch_size)]
    inserter = EventInserter(store.engine)
    writer = RollupWriter(store.engine.dialect)

    def report(label: str, started: float) -> None:
        used = time.process_time() - started
        print(f"  {label:36} {used / count * 1e6:7.1f} µs/event (CPU of this process)")

    for table in reversed(metadata.sorted_tables):
        with store.engine.begin() as connection:
            connection.execute(table.delete())
    started = time.process_time()
    for batch in batches:
        with store.engine.begin() as connection:
            inserter.insert(connection, batch)
    report("events only", started)
    with store.engine.begin() as connection:
        connection.execute(events.delete())
    staging = Store(store.engine, fold_interval_s=math.inf)  # the writer's path, no fold
    started = time.process_time()
    for batch in batches:
        staging.insert_events(batch)
    report("events + staging (insert_events)", started)
    connection = store.engine.connect().execution_options(**{BEGIN_MODE: "IMMEDIATE"})
    with connection, connection.begin():
        started = time.process_time()
        writer.fold(connection)
        report("fold (into every hourly rollup)", started)
        started = time.process_time()
        writer.seal(connection, END + timedelta(days=1))
        report("seal (every daily rollup, once a day)", started)


QUERIES: tuple[tuple[str, dict[str, object]], ...] = (
    ("total", {}),
    ("by department", {"group_by": "department"}),
    ("by project", {"group_by": "project"}),
    ("by project,base_model", {"group_by": "project,base_model"}),
    ("by model_id,region", {"group_by": "model_id,region"}),
    ("by user_id", {"group_by": "user_id"}),
    ("by agent, daily", {"group_by": "agent", "bucket": "day"}),
    ("by department, hourly", {"group_by": "department", "bucket": "hour"}),
    ("by department,region, hourly", {"group_by": "department,region", "bucket": "hour"}),
    ("by base_model, weekly", {"group_by": "base_model", "bucket": "week"}),
    ("dept-3 by user_id", {"group_by": "user_id", "filters": {"department": "dept-3"}}),
    ("by status,operation", {"group_by": "status,operation"}),
    ("daily series", {"bucket": "day"}),
    # pairs no narrower rollup holds together: read the pair rollup
    ("by user_id,region", {"group_by": "user_id,region"}),
    ("by department,region", {"group_by": "department,region"}),
    ("by key_id,operation", {"group_by": "key_id,operation"}),
    ("by agent,status, daily", {"group_by": "agent,status", "bucket": "day"}),
    # three fields that no rollup but the full ones holds together
    ("by department,region,status", {"group_by": "department,region,status"}),
    ("by user_id,model_id,operation", {"group_by": "user_id,model_id,operation"}),
    # distinct sessions and workflows: the id rollups
    ("total + sessions", {"sessions": True}),
    ("by department + sessions", {"group_by": "department", "sessions": True}),
    ("by agent, daily + sessions", {"group_by": "agent", "bucket": "day", "sessions": True}),
    ("by user_id,region + sessions", {"group_by": "user_id,region", "sessions": True}),
    # grouped by an id, or filtered to no id: through the id rollups
    ("proj-7 by session_id", {"group_by": "session_id", "filters": {"project": "proj-7"}}),
    ("agent-5 by workflow_id", {"group_by": "workflow_id", "filters": {"agent": "agent-5"}}),
    (
        "proj-7 by session_id, daily",
        {"group_by": "session_id", "filters": {"project": "proj-7"}, "bucket": "day"},
    ),
    ("by department, no workflow", {"group_by": "department", "filters": {"workflow_id": ""}}),
    ("by session_id, top 100", {"group_by": "session_id", "limit": 100}),
    ("by workflow_id, top 100", {"group_by": "workflow_id", "limit": 100}),
    (
        "proj-7 by session_id, hourly",
        {"group_by": "session_id", "filters": {"project": "proj-7"}, "bucket": "hour"},
    ),
    (
        "agent-5 by workflow_id, hourly",
        {"group_by": "workflow_id", "filters": {"agent": "agent-5"}, "bucket": "hour"},
    ),
    # hourly series with distinct counts: a month of the hourly id rollup
    ("hourly series + sessions", {"bucket": "hour", "sessions": True}),
    (
        "by department, hourly + sessions",
        {"group_by": "department", "bucket": "hour", "sessions": True},
    ),
    # an id and the other id's distinct count, or both ids: the sheet of rows with both ids
    (
        "agent-5 by workflow_id + sessions",
        {"group_by": "workflow_id", "filters": {"agent": "agent-5"}, "sessions": True},
    ),
    (
        "proj-7 by session_id + sessions",
        {"group_by": "session_id", "filters": {"project": "proj-7"}, "sessions": True},
    ),
    (
        "by department, no workflow + sessions",
        {"group_by": "department", "filters": {"workflow_id": ""}, "sessions": True},
    ),
    (
        "by workflow_id + sessions, top 100",
        {"group_by": "workflow_id", "sessions": True, "limit": 100},
    ),
    ("by session_id,workflow_id, top 100", {"group_by": "session_id,workflow_id", "limit": 100}),
)


def timed(store: Store, query: SpendQuery, repeat: int) -> tuple[float, ...]:
    """The first run's time (slots not in the rollup cache yet: answered in SQL while the
    cache's worker loads them, or loaded by the query if only a few), then, once the worker
    is done, the median and the worst of ``repeat`` more, in ms, of the API's answer (the
    JSON body of ``GET /api/v1/spend``, ``web.api.spend_body``); then the median of
    ``repeat`` runs of ``spend`` (the ``SpendRow``s the dashboard and the CLI use) and the
    rows answered."""
    times = []
    for run in range(repeat + 1):
        started = time.perf_counter()
        spend_body(store, query)
        times.append((time.perf_counter() - started) * 1000)
        if not run:
            waited = time.perf_counter()
            store.rollup_cache.wait()
            times.append((time.perf_counter() - waited) * 1000)
    objects = []
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = len(spend(store, query))
        objects.append((time.perf_counter() - started) * 1000)
    median, worst = statistics.median(times[2:]), max(times[2:])
    return times[0], times[1], median, worst, statistics.median(objects), rows


def latest(store: Store) -> datetime:
    with store.engine.connect() as connection:
        newest = connection.execute(select(func.max(events.c.ts))).scalar_one()
    return END if newest is None else min(END, newest.replace(tzinfo=UTC))


def run_queries(store: Store, repeat: int, *, latency: bool = True, only: str = "") -> None:
    # 30 days ending at 12:29 on the last whole day of data: the worst case for the edges
    # (each end subtracts 29 raw minutes at the busiest time of day and twelve hourly slots).
    last_day = latest(store).replace(hour=0, minute=0, second=0, microsecond=0)
    until = last_day - timedelta(days=1) + timedelta(hours=12, minutes=29)
    since = until - timedelta(days=30)
    what = "with latency p50/p95" if latency else "latency=False"
    print(f"\n30-day queries [{since:%Y-%m-%d %H:%M} .. {until:%Y-%m-%d %H:%M}), {what}, ms:")
    print("API answer (JSON body): first, loading, median, worst; SpendRows: median")
    head = f"{'query':42} {'first':>8} {'loading':>8} {'median':>8} {'worst':>8} {'rows':>8}"
    print(f"{head} {'rows':>6}  parts")
    for name, args in QUERIES:
        if only not in name:
            continue
        query = SpendQuery.of(since, until, latency=latency, **args)  # type: ignore[arg-type]
        loads = store.rollup_cache.stats.loads
        first, loading, median, worst, objects, rows = timed(store, query, repeat)
        parts = plan(since, until, rollups=True, days=query.bucket != "hour")
        used = " ".join(("-" if p.sign < 0 else "+") + p.source for p in parts)
        loaded = store.rollup_cache.stats.loads - loads
        used += f"  (cache: {loaded} slots loaded)" if loaded else ""
        line = f"{name:42} {first:8.1f} {loading:8.1f} {median:8.1f} {worst:8.1f}"
        print(f"{line} {objects:8.1f} {rows:6}  {used}", flush=True)


def warm(store: Store, days: int, *, rehearsed: bool) -> None:
    """Warm the rollup cache as the gateway does at start, then (``rehearsed``) ask what
    ``analytics.rehearse`` asks, as the gateway does next; print the times and memory."""
    cache = store.rollup_cache
    now = latest(store)
    started = time.perf_counter()
    loaded: list[float] = []

    def then() -> None:
        loaded.append(time.perf_counter())
        if rehearsed:
            rehearse(store, now, days)

    cache.warm(now, days, then=then)
    cache.wait()
    took, rest = loaded[0] - started, time.perf_counter() - loaded[0]
    size = cache.size_bytes / 2**20
    print(f"warmed {days} days in {took:.1f} s: {size:,.0f} MB in {cache.slot_count} slots")
    if rehearsed:
        print(f"rehearsed in {rest:.1f} s")


def restarted(store: Store, folder: Path, days: int, *, rehearsed: bool) -> Store:
    """Save the cache's copies in ``folder`` as the gateway does at shutdown, open the store
    again (a restarted gateway: a new cache), read them back and warm it as the gateway
    does at start; print the times. Returns the new store."""
    started = time.perf_counter()
    saved = store.rollup_cache.save(folder)
    took = time.perf_counter() - started
    assert saved is not None, "nothing to save: warm first"
    size = sum(f.stat().st_size for f in saved.iterdir()) / 2**20
    print(f"saved {store.rollup_cache.slot_count} slots in {took:.1f} s: {size:,.0f} MB on disk")
    url = store.engine.url.render_as_string(hide_password=False)
    store.close()
    again = open_store(url, cache_bytes=DEFAULT_BYTES)
    read_back(again, folder)
    warm(again, days, rehearsed=rehearsed)
    print(f"slots loaded from the database while warming: {again.rollup_cache.stats.loads}")
    return again


def read_back(store: Store, folder: Path) -> None:
    """Read the newest snapshot in ``folder`` back into ``store``'s cache; print the time."""
    cache = store.rollup_cache
    started = time.perf_counter()
    cache.restore(folder)
    cache.wait()
    took = time.perf_counter() - started
    print(f"read back {cache.slot_count} slots in {took:.1f} s: {cache.size_bytes / 2**20:,.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="sqlite:///… or postgresql://…")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reload", action="store_true", help="empty the database first")
    parser.add_argument("--no-queries", action="store_true")
    parser.add_argument("--only", default="", help="time only the queries whose name has this")
    parser.add_argument(
        "--no-cache", action="store_true", help="answer from SQL only (no in-memory rollup cache)"
    )
    parser.add_argument(
        "--no-reuse",
        action="store_true",
        help="keep no part's sums for a repeated question: every asking sums the cached slots",
    )
    parser.add_argument(
        "--warm",
        type=int,
        metavar="DAYS",
        default=0,
        help="warm the rollup cache with DAYS days first (as the gateway does at start)",
    )
    parser.add_argument(
        "--no-rehearse",
        action="store_true",
        help="after --warm, do not ask what analytics.rehearse asks (the gateway does)",
    )
    parser.add_argument(
        "--restart",
        type=Path,
        metavar="DIR",
        help="after --warm, save the cache's copies in DIR, open the store again, read them "
        "back and warm (as a restarted gateway does), then time the queries",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="first read back the copies a --restart run saved in DIR (as a restarted gateway "
        "does), then --warm: reloads only what changed since",
    )
    parser.add_argument(
        "--writer",
        action="store_true",
        help="load through Store.insert_events (the writer's path) instead of in bulk",
    )
    parser.add_argument(
        "--write-cost",
        type=int,
        metavar="N",
        help="only measure the CPU per event of storing N events (in --batch batches)",
    )
    args = parser.parse_args(argv)
    if args.write_cost:
        write_cost(args.db, args.write_cost, args.batch)
        return 0
    if args.no_reuse:
        rollup_cache._SUMS_SHARE = 0
    store = open_store(args.db, cache_bytes=0 if args.no_cache else DEFAULT_BYTES)
    try:
        if args.reload:
            with store.engine.begin() as connection:
                for table in reversed(metadata.sorted_tables):
                    connection.execute(table.delete())
        have = stored(store)
        if have < args.events:
            print(f"{store.url}: {have:,} events stored; loading {args.events - have:,}")
            load(store, args.events, have, args.days, args.batch, writer=args.writer)
        print(f"{store.url}: {stored(store):,} events")
        if args.resume and not args.no_cache:
            read_back(store, args.resume)
        if args.warm and not args.no_cache:
            warm(store, args.warm, rehearsed=not args.no_rehearse)
            if args.restart:
                store = restarted(store, args.restart, args.warm, rehearsed=not args.no_rehearse)
        if not args.no_queries:
            run_queries(store, args.repeat, only=args.only)
            run_queries(store, args.repeat, latency=False, only=args.only)
            cache = store.rollup_cache
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # KiB on Linux
            print(f"\nrollup cache: {cache.size_bytes / 2**20:,.0f} MB in {cache.slot_count} slots")
            print(f"process peak resident memory: {peak:,.0f} MB")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
