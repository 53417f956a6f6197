"""The listener's sender against a PutEvents receiver on loopback, with the real botocore client:
the entry has the shape Podwarden's published schema describes, and a task never waits or fails
because of it."""

from __future__ import annotations

import json
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from podwarden_airflow import listener
from podwarden_airflow.config import Settings
from podwarden_airflow.sender import DETAIL_TYPE, EventSender

SCHEMA = Path(__file__).resolve().parents[4] / "schemas" / "airflow.listener@TaskInstanceChanged.json"


class Receiver:
    def __init__(self, *, delay: float = 0.0):
        self.entries: list[dict[str, Any]] = []
        self.delay = delay
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                time.sleep(receiver.delay)  # a slow bus, not synchronisation
                with receiver.arrived:
                    receiver.entries.extend(body["Entries"])
                    receiver.arrived.notify_all()
                answer = json.dumps({"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in body["Entries"]]})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.entries) >= count, timeout):
                raise TimeoutError(f"{len(self.entries)} of {count} entries arrived within {timeout} s")
            return list(self.entries)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    # botocore signs every request; the receiver does not check the signature.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "podwardenlocal")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "podwardenlocal")


def _settings(url: str, **overrides: Any) -> Settings:
    return Settings(event_bus_name="podwarden", cluster_name="prod", region="us-east-1", events_endpoint_url=url, **overrides)


def _task_instance(task: Any, **fields: Any) -> Any:
    values = {"dag_id": "etl", "task_id": "load", "run_id": "manual__2026-12-04", "map_index": -1, "try_number": 1, "task": task}
    return types.SimpleNamespace(**{**values, **fields})


def _kpo() -> Any:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    return KubernetesPodOperator(task_id="load", name="load", image="x", namespace="airflow")


def test_a_pod_operators_state_reaches_the_bus_in_the_published_shape(receiver, monkeypatch):
    import jsonschema

    for key, value in {"EVENT_BUS_NAME": "podwarden", "CLUSTER_NAME": "prod", "REGION": "us-east-1", "EVENTS_ENDPOINT_URL": receiver.url}.items():
        monkeypatch.setenv(f"AIRFLOW__PODWARDEN__{key}", value)
    listener.on_task_instance_success(None, _task_instance(_kpo()))
    (entry,) = receiver.wait_for(1)
    assert entry["DetailType"] == DETAIL_TYPE and entry["Source"] == "airflow.listener"
    detail = json.loads(entry["Detail"])
    assert detail == {
        "dag_id": "etl",
        "task_id": "load",
        "run_id": "manual__2026-12-04",
        "map_index": -1,
        "try_number": 1,
        "state": "success",
        "cluster": "prod",
        "namespace": "airflow",
    }
    envelope = {"detail-type": entry["DetailType"], "source": entry["Source"], "detail": detail}
    jsonschema.validate(envelope, json.loads(SCHEMA.read_text()))


def test_other_operators_are_not_reported(receiver):
    from airflow.providers.standard.operators.empty import EmptyOperator

    sender = EventSender(_settings(receiver.url))
    settings = sender.settings
    assert listener._is_pod_operator(_task_instance(EmptyOperator(task_id="x")), settings) is False
    assert listener._is_pod_operator(_task_instance(_kpo()), settings) is True
    # Without the task object (a state set through the API server): the recorded operator name.
    assert listener._is_pod_operator(_task_instance(None, operator="KubernetesPodOperator"), settings) is True
    assert listener._is_pod_operator(_task_instance(None, operator="BashOperator"), settings) is False


def test_submit_never_waits_for_a_slow_bus_and_a_full_queue_drops_and_counts():
    slow = Receiver(delay=1.0)
    try:
        sender = EventSender(_settings(slow.url, queue_size=2))
        started = time.monotonic()
        accepted = [sender.submit({"n": n}) for n in range(6)]
        assert time.monotonic() - started < 0.5  # the task went on at once
        assert accepted.count(False) >= 1 and sender.stats["dropped"] == accepted.count(False)
        assert sender.flush(timeout=10)
        assert sender.stats["sent"] == accepted.count(True)
    finally:
        slow.server.shutdown()


def test_an_unreachable_bus_is_counted_and_never_raises():
    sender = EventSender(_settings("http://127.0.0.1:9", send_timeout_seconds=0.5))
    assert sender.submit({"n": 1})
    assert sender.flush(timeout=15)
    assert sender.stats["failed"] == 1 and sender.stats["sent"] == 0


def test_a_listener_without_a_bus_sends_nothing_and_a_broken_task_instance_never_raises(receiver, monkeypatch):
    listener.on_task_instance_failed(None, _task_instance(_kpo()))  # no [podwarden] event_bus_name
    for key, value in {"EVENT_BUS_NAME": "podwarden", "CLUSTER_NAME": "prod", "REGION": "us-east-1", "EVENTS_ENDPOINT_URL": receiver.url}.items():
        monkeypatch.setenv(f"AIRFLOW__PODWARDEN__{key}", value)
    listener.on_task_instance_failed(None, object())  # no dag_id, no task: logged, not raised
    listener.on_task_instance_failed(None, _task_instance(_kpo(), state="failed"))
    (entry,) = receiver.wait_for(1)
    assert json.loads(entry["Detail"])["state"] == "failed"
