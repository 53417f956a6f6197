"""Helpers for the unit tests: recorded kube objects, turned into the client's models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubernetes import client

RECORDED = Path(__file__).parent / "recorded"
_api = client.ApiClient()


class _Response:
    def __init__(self, data: Any):
        self.data = json.dumps(data)


def model(data: dict[str, Any], kind: str) -> Any:
    """A dict as the API server sends it, deserialized exactly as the kubernetes client does."""
    return _api.deserialize(_Response(data), kind)


def recorded(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / name).read_text())


def pod(uid: str, *, phase: str = "Running", name: str = "etl-load-7f3k", containers: list[dict[str, Any]] | None = None) -> Any:
    return model(
        {
            "metadata": {"name": name, "namespace": "airflow", "uid": uid},
            "spec": {"containers": [{"name": "base", "image": "x"}]},
            "status": {"phase": phase, "containerStatuses": containers or []},
        },
        "V1Pod",
    )


def event(reason: str, uid: str, at: str, annotations: dict[str, str] | None = None, message: str = "", component: str = "podwarden") -> dict[str, Any]:
    return {
        "metadata": {"name": f"etl-load-7f3k.{reason}", "namespace": "airflow", "annotations": annotations or {}},
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "involvedObject": {"kind": "Pod", "name": "etl-load-7f3k", "uid": uid},
        "firstTimestamp": at,
        "lastTimestamp": at,
    }
