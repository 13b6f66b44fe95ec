"""Starts the real Switchyard binary once per test session and creates API keys."""

from __future__ import annotations

import json
import os
import queue
import secrets
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SDK_ROOT = Path(__file__).resolve().parents[1]
#: `queue.max_step_output_bytes` of the test server.
MAX_STEP_OUTPUT_BYTES = 1024


@dataclass(frozen=True)
class Server:
    url: str
    worker_key: str
    client_key: str
    admin_key: str
    admin_token: str
    process: subprocess.Popen[str]


def _binary() -> str:
    path = os.environ.get("SWITCHYARD_BIN") or str(REPO_ROOT / "target" / "debug" / "switchyard")
    if not Path(path).exists():
        pytest.fail(f"no Switchyard binary at {path}: build it or set SWITCHYARD_BIN")
    return path


def _announced_addr(process: subprocess.Popen[str], timeout: float) -> str:
    """Reads the server's stdout to the end on a thread (so the pipe never fills) and returns
    the address of its "switchyard is up" line."""
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        sent = False
        assert process.stdout is not None
        for line in process.stdout:
            if sent:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                fields = record.get("fields", record)
                if fields.get("message") == "switchyard is up":
                    found.put(str(fields.get("addr")))
                    sent = True

    threading.Thread(target=read, daemon=True).start()
    try:
        return found.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        pytest.fail("the server did not report its address")


def _key(url: str, token: str, name: str, scopes: list[str]) -> str:
    response = httpx.post(
        f"{url}/api/v1/api-keys",
        headers={"authorization": f"Bearer {token}"},
        json={"name": name, "scopes": scopes},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="switchyard-py-") as data_dir:
        env = dict(os.environ)
        env.update(
            SWITCHYARD_ADMIN_PASSWORD=password,
            SWITCHYARD__TELEMETRY__LOG_FORMAT="json",
            SWITCHYARD__TELEMETRY__LOG_LEVEL="info",
            # Short leases: a task outlives its lease only if the worker's heartbeats renew it.
            SWITCHYARD__QUEUE__LEASE_MS="3000",
            SWITCHYARD__QUEUE__HEARTBEAT_MS="500",
            # A small limit on a step's output, so that test_steps.py can go over it cheaply.
            SWITCHYARD__QUEUE__MAX_STEP_OUTPUT_BYTES=str(MAX_STEP_OUTPUT_BYTES),
        )
        process = subprocess.Popen(
            [_binary(), "dev", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        try:
            url = f"http://{_announced_addr(process, 60)}"
            login = httpx.post(
                f"{url}/api/v1/auth/login",
                json={"email": "admin@localhost", "password": password},
                timeout=30,
            )
            assert login.status_code == 200, login.text
            token = str(login.json()["access_token"])
            yield Server(
                url=url,
                worker_key=_key(url, token, "py-worker", ["worker"]),
                client_key=_key(url, token, "py-client", ["submit", "read"]),
                admin_key=_key(url, token, "py-admin", ["admin", "worker"]),
                admin_token=token,
                process=process,
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
