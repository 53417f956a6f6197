"""Small readings of a pod (a ``kubernetes`` or ``kubernetes_asyncio`` V1Pod model)."""

from __future__ import annotations

import copy
import datetime
from typing import Any

TERMINAL_PHASES = ("Succeeded", "Failed")
PULL_WAITING_REASONS = ("ErrImagePull", "ImagePullBackOff")


def pod_uid(pod: Any) -> str | None:
    metadata = getattr(pod, "metadata", None)
    return getattr(metadata, "uid", None)


def pod_phase(pod: Any) -> str | None:
    return getattr(getattr(pod, "status", None), "phase", None)


def _status_of(pod: Any, container: str) -> Any:
    statuses = getattr(getattr(pod, "status", None), "container_statuses", None) or []
    return next((s for s in statuses if getattr(s, "name", None) == container), None)


def terminated_state(pod: Any, container: str) -> Any:
    """The container's ``state.terminated``, or None while it has not terminated."""
    status = _status_of(pod, container)
    return getattr(getattr(status, "state", None), "terminated", None)


def finished_at(terminated: Any) -> float | None:
    value = getattr(terminated, "finished_at", None)
    if isinstance(value, datetime.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).timestamp()
    return None


def in_pull_error(pod: Any) -> bool:
    """Some container waits on an image pull that failed (the kubelet keeps retrying it)."""
    statuses = getattr(getattr(pod, "status", None), "container_statuses", None) or []
    return any(
        getattr(getattr(getattr(s, "state", None), "waiting", None), "reason", None) in PULL_WAITING_REASONS
        for s in statuses
    )


def settled_by_main_container(pod: Any, container: str) -> Any:
    """A copy of ``pod`` whose phase is what its main container's exit code says.

    Used when a sidecar keeps the pod Running after the main container ended (Podwarden's
    sidecar-zombie rule: the task's outcome is the main container's): the operator's own
    end-of-task logic then judges the task by it. The pod in the cluster is not changed.
    """
    terminated = terminated_state(pod, container)
    if terminated is None:
        raise ValueError(f"container {container!r} of the pod has not terminated")
    settled = copy.deepcopy(pod)
    settled.status.phase = "Succeeded" if getattr(terminated, "exit_code", 1) == 0 else "Failed"
    return settled
