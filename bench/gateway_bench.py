"""Gateway overhead: CPU per request on one core, added latency, added time to first byte.

Layout (2 cores): the gateway (or the floor) runs pinned to CPU 0; a fast fixed upstream
(bench/fast_upstream.py) and the load generator run on CPU 1. The gateway runs with everything
on: key auth, attribution, model resolution, requestMetadata injection, SigV4 signing, usage
capture, pricing and recording to SQLite (its writer thread's CPU counts too). The floor is a
bare pass-through on the same stack (bench/floor_proxy.py).

- CPU per request = the server process's CPU time (/proc utime+stime) / requests served, under
  wrk -c32 for ``--seconds``; throughput is wrk's requests/s at that load. It is also split into
  the event loop's thread ("loop") and the other threads ("other": the event writer's inserts).
- Added p50 latency: wrk -c1 through the server minus wrk -c1 straight to the upstream.
- Added time to first byte of a stream: 400 sequential ConverseStream calls, median first-byte
  time through the server minus straight to the upstream.

Needs wrk and taskset. Usage: ``.venv/bin/python bench/gateway_bench.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from spendgate.gateway.keys import hash_key, key_prefix, new_key, new_key_id
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY
from spendgate.store.db import open_store
from spendgate.store.keys import KeyRecord

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BODY = json.dumps(
    {
        "messages": [{"role": "user", "content": [{"text": "What is six times seven?"}]}],
        "inferenceConfig": {"maxTokens": 64},
    }
)
PATH = "/model/amazon.nova-lite-v1%3A0/converse"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start(
    cmd: list[str], cpu: int, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["taskset", "-c", str(cpu), *cmd],
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_up(port)
    return proc


def uvicorn(
    app: str, port: int, cpu: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    cmd = [
        str(BIN / "uvicorn"),
        app,
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return start(cmd, cpu, port, env)


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """CPU time of process ``pid`` (all threads), or of one of its threads."""
    stat = Path(f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wrk(port: int, connections: int, seconds: int, headers: dict[str, str]) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(BODY)}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}{PATH}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": float(p50.group(1)) * unit[p50.group(2)] if p50 else float("nan"),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
    }


def first_byte_ms(port: int, headers: dict[str, str], count: int = 400) -> float:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    body = BODY.encode()
    request = (
        f"POST {PATH.replace('/converse', '/converse-stream')} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n"
    ).encode() + body
    times = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            data = sock.recv(65536)
            times.append((time.perf_counter() - started) * 1000)
            while b"0\r\n\r\n" not in data[-7:]:  # read to the end of the chunked body
                data += sock.recv(65536)
    return statistics.median(times[20:])


def measure(
    name: str, port: int, proc: subprocess.Popen[bytes], headers: dict[str, str], seconds: int
) -> dict[str, float]:
    wrk(port, 32, 2, headers)  # warm-up
    before, main_before = cpu_seconds(proc.pid), cpu_seconds(proc.pid, proc.pid)
    load = wrk(port, 32, seconds, headers)
    cpu_ms = (cpu_seconds(proc.pid) - before) / load["requests"] * 1000
    main_ms = (cpu_seconds(proc.pid, proc.pid) - main_before) / load["requests"] * 1000
    single = wrk(port, 1, max(seconds // 2, 3), headers)
    ttfb = first_byte_ms(port, headers)
    return {
        "name": name,
        "cpu_ms": cpu_ms,
        "main_ms": main_ms,  # the event loop's thread; the rest is the writer's threads
        "rps": load["rps"],
        "p50_ms": single["p50_ms"],  # type: ignore[dict-item]
        "ttfb_ms": ttfb,
        "non_2xx": load["non_2xx"] + single["non_2xx"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--db", default="", help="store URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    up_port = free_port()
    upstream = uvicorn("bench.fast_upstream:app", up_port, cpu=1)
    rows = []
    try:
        direct = {"p50_ms": wrk(up_port, 1, 3, {})["p50_ms"], "ttfb_ms": first_byte_ms(up_port, {})}
        floor_port = free_port()
        floor = uvicorn(
            "bench.floor_proxy:app",
            floor_port,
            cpu=0,
            env={"FLOOR_UPSTREAM": f"http://127.0.0.1:{up_port}"},
        )
        try:
            rows.append(measure("floor (bare pass-through)", floor_port, floor, {}, args.seconds))
        finally:
            floor.terminate()
            floor.wait()
        db = args.db or f"sqlite:///{tmp / 'bench.db'}"
        store = open_store(db)
        key = new_key()
        store.create_key(
            KeyRecord(
                id=new_key_id(),
                name="bench",
                key_hash=hash_key(key),
                key_prefix=key_prefix(key),
                created_at=datetime.now(UTC),
                defaults={"department": "bench", "project": "overhead"},
            )
        )
        store.close()
        gw_port = free_port()
        gateway = start(
            [
                str(BIN / "spendgate"),
                "serve",
                "--port",
                str(gw_port),
                "--db",
                db,
                "--bedrock-endpoint",
                f"http://127.0.0.1:{up_port}",
            ],
            0,
            gw_port,
            env={
                "AWS_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET_ACCESS_KEY,
                "AWS_EC2_METADATA_DISABLED": "true",
                "SPENDGATE_GATEWAY_JOURNAL_PATH": str(tmp / "journal.jsonl"),
            },
        )
        try:
            headers = {"X-Spendgate-Key": key, "X-Agent": "bench-agent", "X-User": "alice"}
            rows.append(measure("gateway (everything on)", gw_port, gateway, headers, args.seconds))
        finally:
            gateway.terminate()
            gateway.wait()
        events = open_store(db).list_events(limit=1)
        assert events and events[0].cost_usd, "the gateway did not record priced events"
    finally:
        upstream.terminate()
        upstream.wait()
    print(
        f"direct to upstream: p50 {direct['p50_ms']:.3f} ms, "
        f"stream first byte {direct['ttfb_ms']:.3f} ms"
    )
    print(
        f"{'server':<28}{'CPU ms/req':>11}{'(loop':>7}{'other)':>7}{'req/s':>8}{'+p50 ms':>9}"
        f"{'+TTFB ms':>10}{'non-2xx':>9}"
    )
    for r in rows:
        added_p50 = r["p50_ms"] - direct["p50_ms"]
        added_ttfb = r["ttfb_ms"] - direct["ttfb_ms"]
        other = r["cpu_ms"] - r["main_ms"]
        print(
            f"{r['name']:<28}{r['cpu_ms']:>11.3f}{r['main_ms']:>7.3f}{other:>7.3f}{r['rps']:>8.0f}"
            f"{added_p50:>9.3f}{added_ttfb:>10.3f}{r['non_2xx']:>9.0f}"
        )
    print(f"gateway / floor CPU ratio: {rows[1]['cpu_ms'] / rows[0]['cpu_ms']:.2f}")


if __name__ == "__main__":
    main()
