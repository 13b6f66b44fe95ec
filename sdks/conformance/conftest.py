"""The real server for the conformance suite, and the conformance worker of each SDK as a real
process.

One server per SDK (a fresh data directory, a fixed port so it can be restarted mid-task on
the same address), with an admin API key for the runner and a worker API key for the workers.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
#: Generous: the machine is slow and busy.
WAIT = 90.0
SDKS = ("rust", "python", "typescript")


def scenarios() -> dict[str, Any]:
    """scenarios.json, or the file CONFORMANCE_SCENARIOS names (e.g. one scenario repeated)."""
    path = os.environ.get("CONFORMANCE_SCENARIOS") or str(HERE / "scenarios.json")
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def _binary() -> str:
    path = os.environ.get("SWITCHYARD_BIN") or str(REPO_ROOT / "target" / "debug" / "switchyard")
    if not Path(path).exists():
        pytest.fail(f"no Switchyard binary at {path}: build it or set SWITCHYARD_BIN")
    return path


def worker_command(sdk: str) -> list[str]:
    """How to start the conformance worker of `sdk` (see run-tests.sh for how each is built)."""
    if sdk == "rust":
        path = os.environ.get("CONFORMANCE_RUST_WORKER") or str(
            REPO_ROOT / "target" / "debug" / "switchyard-conformance-worker"
        )
        command = [path]
    elif sdk == "python":
        python = REPO_ROOT / "sdks" / "python" / ".venv" / "bin" / "python"
        path = str(REPO_ROOT / "sdks" / "python" / "examples" / "conformance_worker.py")
        command = [str(python), path]
    elif sdk == "typescript":
        path = str(
            REPO_ROOT / "sdks" / "typescript" / "build" / "examples" / "conformance-worker.js"
        )
        command = ["node", path]
    else:
        raise ValueError(sdk)
    if not Path(path).exists():
        pytest.fail(f"no {sdk} conformance worker at {path}: run sdks/conformance/run-tests.sh")
    return command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until_up(process: subprocess.Popen[str], timeout: float) -> None:
    """Reads the server's stdout to the end on a thread (so the pipe never fills) and returns
    when it logs "switchyard is up"."""
    up: queue.Queue[bool] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                fields = record.get("fields", record)
                if isinstance(fields, dict) and fields.get("message") == "switchyard is up":
                    up.put(True)

    threading.Thread(target=read, daemon=True).start()
    try:
        up.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        pytest.fail("the server did not start")


class Server:
    """The real binary on a fixed port and data directory, so it can be restarted."""

    def __init__(self, data_dir: str) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.process: subprocess.Popen[str] | None = None
        self.admin_key = ""
        self.worker_key = ""

    def start(self) -> None:
        env = dict(os.environ)
        env.update(
            SWITCHYARD_ADMIN_PASSWORD=self.password,
            SWITCHYARD__TELEMETRY__LOG_FORMAT="json",
            SWITCHYARD__TELEMETRY__LOG_LEVEL="info",
            # Short leases: a task outlives its lease only if the worker's heartbeats renew it.
            SWITCHYARD__QUEUE__LEASE_MS="3000",
            SWITCHYARD__QUEUE__HEARTBEAT_MS="500",
            SWITCHYARD__QUEUE__REAPER_INTERVAL_MS="200",
        )
        self.process = subprocess.Popen(
            [_binary(), "dev", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        _wait_until_up(self.process, WAIT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_keys(self) -> None:
        login = httpx.post(
            f"{self.url}/api/v1/auth/login",
            json={"email": "admin@localhost", "password": self.password},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        token = str(login.json()["access_token"])
        self.admin_key = self._key(token, "conformance-admin", ["admin"])
        self.worker_key = self._key(token, "conformance-worker", ["worker"])

    def _key(self, token: str, name: str, scopes: list[str]) -> str:
        response = httpx.post(
            f"{self.url}/api/v1/api-keys",
            headers={"authorization": f"Bearer {token}"},
            json={"name": name, "scopes": scopes},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["secret"])


class WorkerProcess:
    """One conformance worker of one SDK, as a real process."""

    def __init__(self, sdk: str, server: Server, name: str, log_dir: Path) -> None:
        self.name = name
        env = dict(os.environ)
        env.update(SWITCHYARD_API_KEY=server.worker_key, WORKER_NAME=name, WORKER_SLOTS="4")
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*worker_command(sdk), server.url],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = WAIT) -> int:
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT)


@pytest.fixture(scope="module", params=SDKS)
def sdk(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="module")
def server(sdk: str) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix=f"switchyard-conformance-{sdk}-") as data_dir:
        server = Server(data_dir)
        server.start()
        try:
            server.create_keys()
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def log_dir(sdk: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(f"workers-{sdk}")


def wait_for(check: Any, what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
