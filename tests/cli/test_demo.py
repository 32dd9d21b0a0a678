"""``spendgate demo`` as a user runs it: a real process that serves a populated dashboard,
records the traffic patterns it promises, and stops cleanly on Ctrl-C (exit 0, no traceback)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
import requests

from spendgate.analytics import SpendQuery, spend
from spendgate.sim.demo import FLAGSHIP
from spendgate.store.db import open_store

from helpers import free_port

SPENDGATE = str(Path(sys.executable).with_name("spendgate"))
REQUESTS = 90
LIMITS = ("--requests", str(REQUESTS), "--duration", "240")
SHORT = ("--duration", "2", "--requests", "5")
AGENTS = {
    "ticket-triage",
    "answer-bot",
    "code-reviewer",
    "sql-fixer",
    "copywriter",
    "report-writer",
    "benchmark-runner",
}


def read_until(stream: IO[str], pattern: str, timeout: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r} in {''.join(seen)!r}")


def text_of(html: str) -> str:
    html = re.sub(r'<script type="application/json".*?</script>', " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def money(text: str, label: str) -> float:
    match = re.search(re.escape(label) + r" \$([0-9,.]+)", text)
    assert match, f"{label} not in {text[:500]!r}"
    return float(match[1].replace(",", ""))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str, Path]]:
    port = free_port()
    folder = tmp_path / "demo"
    proc = subprocess.Popen(
        [SPENDGATE, "demo", "--port", str(port), "--dir", str(folder), *LIMITS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = read_until(proc.stdout, r"Dashboard:\s+(http://\S+)/dashboard")[1]
        token = read_until(proc.stdout, r"Admin token:\s+(\S+)")[1]
        yield proc, url, token, folder
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):  # a test that failed early left them open
            if pipe is not None:
                pipe.close()


@pytest.mark.slow
def test_demo_serves_a_populated_dashboard_and_stops_cleanly(
    demo: tuple[subprocess.Popen[str], str, str, Path],
) -> None:
    proc, url, token, folder = demo
    with requests.Session() as browser:
        signed_in = browser.post(f"{url}/dashboard/signin", data={"token": token}, timeout=10)
        assert signed_in.status_code == 200 and signed_in.url == f"{url}/dashboard"
        deadline, calls, last, steady = time.monotonic() + 90, 0, -1, 0
        while time.monotonic() < deadline:
            overview = text_of(browser.get(f"{url}/dashboard", timeout=30).text)
            calls = int(re.search(r"Calls today ([0-9,]+)", overview)[1].replace(",", ""))  # type: ignore[index]
            # A throttled call may be refused before it is metered, so the count can stop
            # short of REQUESTS: wait until all are in, or it has not moved for 3 s (the demo
            # is done sending: stopping it earlier would cut its traffic short).
            steady = steady + 1 if calls == last else 0
            if calls >= REQUESTS or (calls >= REQUESTS - 5 and steady >= 3):
                break
            last = calls
            time.sleep(1)
        assert calls >= REQUESTS - 5
        assert money(overview, "Spend today") > 0
        assert money(overview, "Spend this month") > 0
        agents = text_of(browser.get(f"{url}/dashboard/agents?range=24h", timeout=30).text)
        shown = {name for name in AGENTS if re.search(rf"{name} \$[0-9.]+ [1-9]", agents)}
        assert shown == AGENTS
        departments = text_of(browser.get(f"{url}/dashboard/departments", timeout=30).text)
        for name in ("support", "engineering", "marketing", "finance", "research"):
            assert money(departments, name) > 0, name
        budgets = browser.get(f"{url}/dashboard/budgets", timeout=30).text
        assert budgets.count("<meter") == 3 and "sql-fixer loop guard" in budgets
        models = text_of(browser.get(f"{url}/dashboard/models", timeout=30).text)
        assert "Claude Opus 4.5" in models and "Nova Pro" in models  # the catalog's names
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err
    sent = int(re.search(r"Stopping: (\d+) calls sent", err)[1])  # type: ignore[index]
    assert sent == REQUESTS
    recorded_patterns(folder, sent)


def recorded_patterns(folder: Path, sent: int) -> None:
    """Every call was drained to the database before exit, and the promised patterns are in it:
    a flagship model answering in one token, an agent repeating one prompt in one session, and
    a repeated system prefix read from the cache."""
    store = open_store(f"sqlite:///{folder / 'spendgate.db'}")
    try:
        events = store.list_events(limit=10_000)
        assert len(events) == sent
        flagship = [e for e in events if e.model_id == FLAGSHIP]
        assert flagship and all(e.output_tokens <= 1 for e in flagship if e.status == "ok")
        loop = [e for e in events if e.agent == "sql-fixer" and e.status == "ok"]
        assert len(loop) >= 3
        assert len({e.prompt_hash for e in loop}) == 1 and len({e.session_id for e in loop}) == 1
        cached = [e for e in events if e.agent == "answer-bot"]
        assert sum(e.cache_read_tokens for e in cached) > 0
        assert sum(e.cache_write_5m_tokens for e in cached) > 0
        assert len(Counter(e.user_id for e in events)) >= 10
        now = datetime.now(UTC)
        by_agent = spend(store, SpendQuery.of(now - timedelta(hours=1), now, "agent"))
        assert {r.keys["agent"] for r in by_agent} == AGENTS
        assert all(r.cost > 0 for r in by_agent)
    finally:
        store.close()


def test_demo_stops_by_itself_after_its_duration(tmp_path: Path) -> None:
    done = subprocess.run(
        [SPENDGATE, "demo", "--port", str(free_port()), "--dir", str(tmp_path / "d"), *SHORT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Stopping: 5 calls sent" in done.stderr


def test_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [SPENDGATE, "demo", "--port", str(port), "--dir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2
    assert done.stderr.startswith("Error: cannot listen on 127.0.0.1:") and "--port" in done.stderr
    assert "Traceback" not in done.stderr
