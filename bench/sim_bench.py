"""Simulator throughput: non-streaming Converse calls per second on one core, zero latency.

The simulator runs pinned to CPU 0 (``taskset -c 0``); wrk runs pinned to CPU 1 and replays one
SigV4-signed Converse request (a signature stays valid for five minutes, so every request is
fully verified: canonical request, HMAC chain, body hash). Needs ``wrk`` (Debian: apt-get install
wrk) and ``taskset``. Usage: ``.venv/bin/python bench/sim_bench.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from spendgate.bedrock.modelids import encode_model_id
from spendgate.bedrock.sigv4 import Credentials, sign
from spendgate.sim.account import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY

MODEL = "amazon.nova-lite-v1:0"
BODY = json.dumps(
    {
        "messages": [{"role": "user", "content": [{"text": "Summarise our Q3 Bedrock spend."}]}],
        "inferenceConfig": {"maxTokens": 64},
    }
).encode()


def start_sim(port: int, log_requests: bool) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).with_name("spendgate"))
    env = {**os.environ, "SPENDGATE_SIM_LOG_REQUESTS": str(log_requests).lower()}
    proc = subprocess.Popen(
        ["taskset", "-c", "0", exe, "sim", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("simulator did not start")


def wrk_script(port: int) -> str:
    path = f"/model/{encode_model_id(MODEL)}/converse"
    headers = {"Content-Type": "application/json"}
    headers |= sign(
        method="POST",
        host=f"127.0.0.1:{port}",
        path=path,
        headers=headers,
        body=BODY,
        credentials=Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY),
        region="us-east-1",
        now=datetime.now(UTC),
    )
    lines = [
        'wrk.method = "POST"',
        f"wrk.path = {json.dumps(path)}",
        f"wrk.body = {json.dumps(BODY.decode())}",
    ]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


def run(port: int, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(wrk_script(port))
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
            f.name,
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "rps": rps,
        "p50_ms": float(p50.group(1)) * unit[p50.group(2)] if p50 else float("nan"),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    print(f"{'request log':<12} {'calls/s':>9} {'p50 ms':>8} {'non-2xx':>8}")
    for log_requests in (False, True):
        port = 18700 + int(log_requests)
        proc = start_sim(port, log_requests)
        try:
            run(port, 2, args.connections)  # warm-up
            r = run(port, args.seconds, args.connections)
        finally:
            proc.terminate()
            proc.wait()
        label = "on" if log_requests else "off"
        print(f"{label:<12} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['non_2xx']:>8.0f}")


if __name__ == "__main__":
    main()
