"""Plays every scenario of scenarios.json against the conformance worker of each SDK (rust,
python, typescript), each started as a real process against the real server, and checks what
the server observed: final status, output, attempts with their workers and error classes, the
order of the task's events, its stored logs."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import WAIT, Server, WorkerProcess, scenarios, wait_for

SPEC = scenarios()
FINAL_STATUSES = {"succeeded", "failed", "dead", "cancelled"}


class Api:
    """The server's REST API with the runner's admin key."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def _client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.url,
            headers={"authorization": f"Bearer {self.server.admin_key}"},
            timeout=30,
        )

    def get(self, path: str) -> Any:
        with self._client() as http:
            response = http.get(path)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with self._client() as http:
            return http.request(method, path, json=body)

    def task(self, task_id: str) -> dict[str, Any]:
        task: dict[str, Any] = self.get(f"/api/v1/tasks/{task_id}")
        return task

    def workers(self) -> list[dict[str, Any]]:
        body = self.get("/api/v1/workers")
        items = body.get("items", body) if isinstance(body, dict) else body
        return [w for w in items if isinstance(w, dict)]

    def connected_workers(self) -> set[str]:
        return {str(w.get("name")) for w in self.workers()}

    def children(self, task_id: str) -> list[dict[str, Any]]:
        body = self.get(f"/api/v1/tasks?parent_id={task_id}")
        items: list[dict[str, Any]] = body.get("items", body) if isinstance(body, dict) else body
        return items

    def events(self, task_id: str) -> list[dict[str, Any]]:
        """Every event of a finished task, replayed from the start (SSE, `since=0`)."""
        events: list[dict[str, Any]] = []
        with (
            self._client() as http,
            http.stream(
                "GET", f"/api/v1/tasks/{task_id}/events", params={"since": 0}, timeout=WAIT
            ) as response,
        ):
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                events.append(event)
                if _is_final(event):
                    break
        return events

    def upload(self, name: str, content: bytes) -> dict[str, Any]:
        with self._client() as http:
            response = http.post(
                "/api/v1/files",
                params={"name": name},
                content=content,
                headers={"content-type": "text/plain"},
            )
        assert response.status_code == 201, f"upload: {response.status_code} {response.text}"
        stored: dict[str, Any] = response.json()
        return stored

    def content(self, file_id: str) -> bytes:
        with self._client() as http:
            response = http.get(f"/api/v1/files/{file_id}/content")
        assert response.status_code == 200, f"download: {response.status_code} {response.text}"
        return response.content

    def logs(self, task_id: str) -> list[dict[str, Any]]:
        body = self.get(f"/api/v1/tasks/{task_id}/logs")
        items: list[dict[str, Any]] = body.get("items", body) if isinstance(body, dict) else body
        return items


def _is_final(event: dict[str, Any]) -> bool:
    kind = event.get("kind")
    if kind in ("result", "error"):
        return True
    return kind == "status" and event.get("status") == "cancelled"


def _substitute(value: Any, names: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and value in names:
        return names[value]
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    return value


def _matches(actual: Any, expected: Any) -> bool:
    """`expected` is a subset of `actual`: every key it names has the expected value (numbers
    compared with a float tolerance); lists and scalars compare exactly."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _matches(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_matches(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return abs(actual - expected) < 1e-9
    return bool(actual == expected)


def _in_order(events: list[dict[str, Any]], expected: list[dict[str, Any]]) -> bool:
    """The expected events appear in this order (others may come between)."""
    position = 0
    for event in events:
        if position < len(expected) and _matches(event, expected[position]):
            position += 1
    return position == len(expected)


class Scenario:
    """One scenario being played: its workers, its task, and what it observed."""

    def __init__(self, sdk: str, server: Server, log_dir: Path, spec: dict[str, Any]) -> None:
        self.sdk = sdk
        self.server = server
        self.api = Api(server)
        self.log_dir = log_dir
        self.spec = spec
        self.workers: list[WorkerProcess] = []
        self.names: dict[str, str] = {}
        self.task_id = ""
        self.later_id: str | None = None

    def start_worker(self, role: str) -> WorkerProcess:
        name = f"{self.sdk}-{self.spec['name']}-{role[1:]}".replace("_", "-")
        worker = WorkerProcess(self.sdk, self.server, name, self.log_dir)
        self.workers.append(worker)
        self.names[role] = name
        wait_for(
            lambda: name in self.api.connected_workers(),
            f"worker {name} to connect ({self.sdk}); its output:\n{worker.output()}",
        )
        return worker

    def submit(self, agent: str, input: Any) -> httpx.Response:
        return self.api.request("POST", "/api/v1/tasks", {"agent": agent, "input": input})

    def play(self, action: dict[str, Any]) -> None:
        what = action["do"]
        worker = self.workers[0]
        if what == "wait_running":
            wait_for(
                lambda: self._running_on(worker.name),
                f"task {self.task_id} to run on {worker.name}",
            )
        elif what == "wait_log":
            wait_for(
                lambda: any(
                    line.get("message") == action["message"]
                    for line in self.api.logs(self.task_id)
                ),
                f"task {self.task_id} to log {action['message']!r}",
            )
        elif what == "wait_status":
            # Until the task has the status and, if given, waits for what `wait` describes.
            expected_wait = action.get("wait")
            wait_for(
                lambda: (t := self.api.task(self.task_id))["status"] == action["status"]
                and (expected_wait is None or _matches(t.get("wait"), expected_wait)),
                f"task {self.task_id} to be {action['status']}"
                + (f" waiting for {json.dumps(expected_wait)}" if expected_wait else ""),
            )
        elif what == "expect_worker_idle":
            # Right after `wait_status`: the waiting task holds none of the worker's slots.
            held = {str(w.get("name")): w.get("slots_in_use") for w in self.api.workers()}
            assert held.get(worker.name) == 0, held
            assert self.api.task(self.task_id)["status"] == "waiting"
        elif what == "signal":
            path = f"/api/v1/tasks/{self.task_id}/signals/{action['name']}"
            response = self.api.request("POST", path, action["payload"])
            assert response.status_code == 202, response.text
        elif what == "cancel":
            response = self.api.request("POST", f"/api/v1/tasks/{self.task_id}/cancel")
            assert response.status_code < 300, response.text
        elif what == "restart_server":
            self.server.restart()
        elif what == "sigkill_worker":
            worker.signal(signal.SIGKILL)
            worker.wait()
        elif what == "start_replacement":
            self.start_worker("$replacement")
        elif what == "sigterm_worker":
            worker.signal(signal.SIGTERM)
            # The worker's `drain` reaches the server before anything else is submitted.
            time.sleep(2.0)
        elif what == "submit_later":
            response = self.submit(action["agent"], action["input"])
            assert response.status_code in (200, 201, 202), response.text
            self.later_id = str(response.json()["id"])
        elif what == "expect_worker_exit":
            code = worker.wait()
            assert code == action["code"], f"{worker.name} exited {code}:\n{worker.output()}"
        else:
            raise AssertionError(f"unknown action {what!r}")

    def _running_on(self, name: str) -> bool:
        task = self.api.task(self.task_id)
        attempts = task.get("attempts") or []
        return task["status"] == "running" and bool(attempts) and attempts[-1].get("worker") == name

    def finish(self) -> dict[str, Any]:
        try:
            return dict(
                wait_for(
                    lambda: (t := self.api.task(self.task_id))["status"] in FINAL_STATUSES and t,
                    f"task {self.task_id} to finish",
                    timeout=WAIT * 2,
                )
            )
        except AssertionError as e:
            task = json.dumps(self.api.task(self.task_id), indent=1)
            workers = "\n".join(f"{w.name}:\n{w.output()}" for w in self.workers)
            raise AssertionError(f"{e}\n{task}\n{workers}") from None

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        if self.later_id is not None:
            self.api.request("POST", f"/api/v1/tasks/{self.later_id}/cancel")


@pytest.fixture(scope="module")
def agents(sdk: str, server: Server, log_dir: Path) -> Iterator[None]:
    """Registers the agents by connecting one worker of the SDK and checks what it declared:
    kind, schema, timeout and retry policy."""
    scenario = Scenario(sdk, server, log_dir, {"name": "register"})
    scenario.start_worker("$worker")
    try:
        for name, wanted in SPEC["agents"].items():
            agent = scenario.api.get(f"/api/v1/agents/{name}")
            assert agent["kind"] == "remote", agent
            assert agent["input_schema"]["type"] == "object", agent
            if "timeout_ms" in wanted:
                assert agent["timeout_ms"] == wanted["timeout_ms"], agent
            if "retry" in wanted:
                assert agent["retry"] == wanted["retry"], agent
    finally:
        scenario.close()
    yield


@pytest.mark.parametrize("spec", SPEC["scenarios"], ids=[s["name"] for s in SPEC["scenarios"]])
def test_scenario(
    sdk: str, server: Server, log_dir: Path, agents: None, spec: dict[str, Any]
) -> None:
    scenario = Scenario(sdk, server, log_dir, spec)
    try:
        scenario.start_worker("$worker")
        expect = spec["expect"]
        submitted = spec["submit"]["input"]
        if "upload" in spec:
            upload = spec["upload"]
            stored = scenario.api.upload(upload["name"], upload["content"].encode())
            submitted = _substitute(submitted, {"$upload": {"$file": stored["id"]}})
        response = scenario.submit(spec["submit"]["agent"], submitted)
        if "rejected" in expect:
            rejected = expect["rejected"]
            assert response.status_code == rejected["http_status"], response.text
            error = response.json()["error"]
            assert error["code"] == rejected["code"], error
            assert rejected["message_contains"] in json.dumps(error), error
            return
        assert response.status_code in (200, 201, 202), response.text
        scenario.task_id = str(response.json()["id"])
        for action in spec.get("during", []):
            scenario.play(action)
        task = scenario.finish()
        check(scenario, _substitute(expect, scenario.names), task)
    finally:
        scenario.close()


def _check_artifacts(api: Api, task: dict[str, Any], expected: list[dict[str, Any]]) -> None:
    """The task's artifacts are the expected ones (by name, type and content), and its
    output's `artifact` reference points at one of them."""
    artifacts = api.get(f"/api/v1/tasks/{task['id']}/artifacts")["items"]
    described = json.dumps(artifacts, indent=1)
    assert len(artifacts) == len(expected), described
    for wanted in expected:
        found = [a for a in artifacts if a["name"] == wanted["name"]]
        assert len(found) == 1, described
        artifact = found[0]
        assert artifact["content_type"] == wanted["content_type"], described
        assert artifact["task_id"] == task["id"], described
        assert api.content(artifact["id"]).decode() == wanted["content"], described
    referenced = (task.get("output") or {}).get("artifact", {}).get("$file")
    assert referenced in {a["id"] for a in artifacts}, json.dumps(task, indent=1)


def check(scenario: Scenario, expect: dict[str, Any], task: dict[str, Any]) -> None:
    api = scenario.api
    described = json.dumps(task, indent=1)
    assert task["status"] == expect["status"], described
    if "output" in expect:
        assert task["output"] == expect["output"], described
    if "output_matches" in expect:
        assert _matches(task["output"], expect["output_matches"]), described
    attempts = task.get("attempts") or []
    if "attempts" in expect:
        assert _matches(attempts, expect["attempts"]), described
    if "succeeded_attempts" in expect:
        succeeded = [a for a in attempts if a.get("status") == "succeeded"]
        assert len(succeeded) == expect["succeeded_attempts"], described
    if "error" in expect:
        assert _matches(task.get("error"), expect["error"]), described
    if "retry_after_ms" in expect:
        _check_retry_after(api, task, expect["retry_after_ms"])
    if "events" in expect or "event_counts" in expect:
        events = api.events(task["id"])
        described = json.dumps(events, indent=1)
        if "events" in expect:
            assert _in_order(events, expect["events"]), described
        for kind, count in expect.get("event_counts", {}).items():
            assert [e.get("kind") for e in events].count(kind) == count, described
    if "steps" in expect:
        steps = api.get(f"/api/v1/tasks/{task['id']}/steps")["items"]
        assert _matches(steps, expect["steps"]), json.dumps(steps, indent=1)
    if "logs" in expect:
        logs = api.logs(task["id"])
        assert _in_order(logs, expect["logs"]), json.dumps(logs, indent=1)
    if "children" in expect:
        _check_children(api, task, expect["children"])
    if "artifacts" in expect:
        _check_artifacts(api, task, expect["artifacts"])
    if "later" in expect:
        assert scenario.later_id is not None
        later = api.task(scenario.later_id)
        assert _matches(later, expect["later"]), json.dumps(later, indent=1)


def _check_retry_after(api: Api, task: dict[str, Any], retry_after_ms: int) -> None:
    """The worker's `retry_after` reached the server: the task waited at least that long
    before its next attempt (a property of the schedule the server recorded, not a timing
    measurement of this run)."""
    events = api.events(task["id"])
    waits = [
        e for e in events if e.get("kind") == "status" and e.get("error") and e.get("run_at")
    ]
    assert waits, json.dumps(events, indent=1)
    for wait in waits:
        at, run_at = _millis(wait["at"]), _millis(wait["run_at"])
        assert run_at - at >= retry_after_ms - 5, json.dumps(wait)


def _check_children(api: Api, task: dict[str, Any], expected: dict[str, Any]) -> None:
    """The task's children (`GET /api/v1/tasks?parent_id=`): how many, each a subset of
    `each`, and their ids are the output's `ids`."""
    children = api.children(task["id"])
    described = json.dumps(children, indent=1)
    assert len(children) == expected["count"], described
    assert all(_matches(c, expected.get("each", {})) for c in children), described
    assert all(c.get("parent_id") == task["id"] for c in children), described
    ids = (task.get("output") or {}).get("ids")
    assert sorted(ids or []) == sorted(str(c["id"]) for c in children), described


def _millis(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000
