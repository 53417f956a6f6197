"""Puts ``Task Instance Changed`` entries on an EventBridge bus from a background thread.

A task never waits for it: ``submit`` only enqueues (a full queue drops the entry, logged and
counted); the thread sends batches of up to 10 entries with short timeouts; at process exit it gets
``flush_timeout_seconds`` to deliver what is queued. Counters: :attr:`EventSender.stats`.
"""

from __future__ import annotations

import atexit
import datetime
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from podwarden_airflow.config import Settings

log = logging.getLogger(__name__)

DETAIL_TYPE = "Task Instance Changed"
BATCH = 10  # PutEvents' limit


def eventbridge_client(settings: Settings) -> Any:
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    return session.create_client(
        "events",
        region_name=settings.region or None,
        endpoint_url=settings.events_endpoint_url or None,
        config=Config(
            connect_timeout=settings.send_timeout_seconds,
            read_timeout=settings.send_timeout_seconds,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
    )


class EventSender:
    def __init__(self, settings: Settings, client_factory: Callable[[Settings], Any] = eventbridge_client):
        self.settings = settings
        self._client_factory = client_factory
        self._client: Any = None
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=settings.queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stats = {"queued": 0, "sent": 0, "dropped": 0, "failed": 0}

    def submit(self, detail: dict[str, Any]) -> bool:
        entry = {
            "Source": self.settings.source,
            "DetailType": DETAIL_TYPE,
            "Detail": json.dumps(detail, separators=(",", ":")),
            "EventBusName": self.settings.event_bus_name,
            "Time": datetime.datetime.now(tz=datetime.timezone.utc),
        }
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self._count("dropped")
            log.warning("Podwarden listener dropped a Task Instance Changed entry: queue full (%d)", self.settings.queue_size)
            return False
        self._count("queued")
        self._ensure_thread()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Waits (bounded) until everything queued was sent or given up on; True when it was."""
        deadline = time.monotonic() + (self.settings.flush_timeout_seconds if timeout is None else timeout)
        while self._queue.unfinished_tasks > 0:
            if time.monotonic() >= deadline:
                log.warning(
                    "Podwarden listener: %d Task Instance Changed entries unsent at exit",
                    self._queue.unfinished_tasks,
                )
                return False
            time.sleep(0.01)
        return True

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n
        try:
            from airflow.sdk.observability import stats

            stats.incr(f"podwarden.listener.{key}", n)
        except Exception:  # metrics are best effort
            pass

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="podwarden-listener", daemon=True)
            self._thread.start()
            atexit.register(self.flush)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._send(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        try:
            if self._client is None:
                self._client = self._client_factory(self.settings)
            answer = self._client.put_events(Entries=batch)
        except Exception as error:
            self._count("failed", len(batch))
            log.warning("Podwarden listener could not send %d entries: %s", len(batch), error)
            return
        failed = int(answer.get("FailedEntryCount") or 0)
        if failed:
            self._count("failed", failed)
            codes = sorted({e.get("ErrorCode", "?") for e in answer.get("Entries", []) if e.get("ErrorCode")})
            log.warning("Podwarden listener: EventBridge refused %d entries (%s)", failed, ", ".join(codes))
        self._count("sent", len(batch) - failed)
