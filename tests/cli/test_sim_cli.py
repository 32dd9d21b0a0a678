"""``spendgate sim`` as a user runs it: a real process on a real port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import bedrock_client, free_port

SPENDGATE = str(Path(sys.executable).with_name("spendgate"))


def test_sim_serves_boto3_and_logs_one_line_per_request(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "sim.log"
    with log.open("w") as out:
        proc = subprocess.Popen([SPENDGATE, "sim", "--port", str(port)], stdout=out, stderr=out)
    try:
        client = bedrock_client(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 15
        while True:
            try:
                r = client.converse(
                    modelId="amazon.nova-lite-v1:0",
                    messages=[{"role": "user", "content": [{"text": "hi"}]}],
                )
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert r["usage"]["inputTokens"] == 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = [line for line in log.read_text().splitlines() if " converse " in line]
    assert len(lines) == 1 and " 200 " in lines[0]
    assert "spendgate-sim-secret" not in log.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--error-rate", "2"], "error_rate must be between 0 and 1"),
        (["--port", "abc"], "'abc' is not a valid integer"),
        (["--credentials-file", "/no/such/file"], "does not exist"),
        (["--tls-certfile", __file__], "tls_certfile and tls_keyfile go together"),
    ],
)
def test_bad_arguments_exit_non_zero_with_one_line(args: list[str], message: str) -> None:
    r = subprocess.run([SPENDGATE, "sim", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_environment_sets_options(tmp_path: Path) -> None:
    env = {**os.environ, "SPENDGATE_SIM_ERROR_RATE": "7"}
    r = subprocess.run([SPENDGATE, "sim"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 2 and "error_rate must be between 0 and 1" in r.stderr
