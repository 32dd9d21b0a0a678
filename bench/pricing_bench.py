"""Benchmark the pricing hot path and the cost of importing spendgate.pricing.

    .venv/bin/python bench/pricing_bench.py [--calls 200000] [--imports 20]

Measures, after a warm-up (the catalog loaded and each (model, Region, tier) resolved once):
- ``price_for`` + ``cost_of`` per call in microseconds, rotating over a realistic mix of ids
  (profile ids, bare ids, an ARN, an unknown model) and request times;
- the import of ``spendgate.pricing`` in a fresh interpreter: ``-X importtime``'s cumulative
  figure for the package, and the CPU time of ``python -c "import spendgate.pricing"`` minus
  that of a bare ``python -c pass``, next to the same figure for its dependencies alone
  (spendgate.bedrock.modelids and the stdlib modules it needs): medians of N runs;
- the first lookup (catalog load + index build) in a fresh interpreter.

Targets (issue "Price catalog and cost engine"): <= 5 us per call, <= 50 ms import.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from spendgate.bedrock.usage import Usage
from spendgate.pricing import cost_of, default_catalog, price_for

CALLS = [
    ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", "standard"),
    ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", "standard"),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", "us-west-2", "batch"),
    ("eu.amazon.nova-lite-v1:0", "eu-west-1", "standard"),
    ("us.anthropic.claude-sonnet-4-6", "us-east-1", "standard"),
    (
        "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-3-70b-instruct-v1:0",
        "us-east-1",
        "standard",
    ),
]
PYCACHE = os.path.join(tempfile.gettempdir(), "spendgate-bench-pycache")
# What spendgate.pricing needs before any of its own code runs (the floor of its import time).
DEPENDENCIES = "import spendgate.bedrock.modelids, spendgate.errors, decimal, datetime, typing"
USAGES = [Usage(1_200, 350, 8_000, 0, 1_000), Usage(300_000, 2_000), Usage(45, 12, 0, 4_000)]


def bench_hot_path(calls: int) -> float:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    times = [start + timedelta(minutes=m) for m in range(97)]
    work = [
        (CALLS[i % len(CALLS)], USAGES[i % len(USAGES)], times[i % len(times)])
        for i in range(1_000)
    ]
    for (model, region, tier), usage, at in work:  # warm-up
        result = price_for(model, region, at, tier)
        if result.price is not None:
            cost_of(usage, result.price)
    rounds = max(1, calls // len(work))
    began = time.perf_counter()
    for _ in range(rounds):
        for (model, region, tier), usage, at in work:
            price = price_for(model, region, at, tier).price
            if price is not None:
                cost_of(usage, price)
    elapsed = time.perf_counter() - began
    return elapsed / (rounds * len(work)) * 1e6


def _env(cached: bool) -> dict[str, str]:
    """The environment of a child: with bytecode written to (and read from) a private cache, as an
    installed package has; or, when not ``cached``, compiling every module from source."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if cached:
        env["PYTHONPYCACHEPREFIX"] = PYCACHE
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def _cpu_ms(code: str, cached: bool) -> float:
    """User + system CPU time of a fresh interpreter running ``code`` (robust to a busy host)."""
    child = subprocess.Popen([sys.executable, "-c", code], env=_env(cached))
    _, _, usage = os.wait4(child.pid, 0)
    return (usage.ru_utime + usage.ru_stime) * 1000


def _importtime_ms(cached: bool) -> float:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import spendgate.pricing"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(cached),
    ).stderr
    line = next(row for row in out.splitlines() if row.rstrip().endswith("| spendgate.pricing"))
    return int(line.split("|")[1]) / 1000


def _first_lookup_ms() -> float:
    code = (
        "import time; from datetime import UTC, datetime; import spendgate.pricing as p;"
        "t=time.perf_counter(); p.price_for('us.amazon.nova-lite-v1:0','us-east-1',"
        "datetime.now(UTC)); print((time.perf_counter()-t)*1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def bench_import(runs: int, cached: bool) -> dict[str, float]:
    """Medians over ``runs`` fresh interpreters, measured interleaved so load affects all alike."""
    _cpu_ms(f"{DEPENDENCIES}; import spendgate.pricing", cached)  # fills the bytecode cache
    samples: dict[str, list[float]] = {k: [] for k in ("importtime", "cpu", "floor")}
    for _ in range(runs):
        bare = _cpu_ms("pass", cached)
        samples["importtime"].append(_importtime_ms(cached))
        samples["cpu"].append(_cpu_ms("import spendgate.pricing", cached) - bare)
        samples["floor"].append(_cpu_ms(DEPENDENCIES, cached) - bare)
    return {key: statistics.median(values) for key, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--imports", type=int, default=15)
    args = parser.parse_args()
    catalog = default_catalog()
    print(
        f"catalog {catalog.version}: {len(catalog.models)} models, {len(catalog.records)} records"
    )
    per_call = min(bench_hot_path(args.calls) for _ in range(3))
    print(f"price_for + cost_of: {per_call:.2f} us/call (best of 3, {args.calls:,} calls, warm)")
    print(f"import spendgate.pricing, medians of {args.imports} fresh interpreters:")
    for cached, label in ((True, "with bytecode cache"), (False, "compiling from source")):
        found = bench_import(args.imports, cached)
        print(
            f"  {label:<22} {found['importtime']:5.1f} ms -X importtime cumulative, "
            f"{found['cpu']:5.1f} ms CPU (dependencies alone: {found['floor']:.1f} ms CPU)"
        )
    print(f"  dependencies = {DEPENDENCIES}")
    first = statistics.median(_first_lookup_ms() for _ in range(args.imports))
    print(f"first lookup (catalog load + index): {first:.1f} ms")


if __name__ == "__main__":
    main()
