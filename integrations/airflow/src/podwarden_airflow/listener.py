"""The listener (registered by the ``airflow.plugins`` entry point): tells Podwarden when a pod
operator's task instance changes state, so Podwarden stops re-creating and reaps the pods of a
task Airflow has ended (failed, succeeded, marked by hand, timed out).

In the worker it also adapts the running task when the cluster policy did not (``dag.test()``
runs the DAG object it was called on, which no DagBag and so no policy has seen).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from airflow.listeners import hookimpl

from podwarden_airflow.config import Settings, load_settings
from podwarden_airflow.sender import EventSender

log = logging.getLogger(__name__)

_sender_lock = threading.Lock()
_senders: dict[Settings, EventSender] = {}


def sender_for(settings: Settings) -> EventSender:
    with _sender_lock:
        sender = _senders.get(settings)
        if sender is None:
            sender = _senders[settings] = EventSender(settings)
        return sender


def _is_pod_operator(task_instance: Any, settings: Settings) -> bool | None:
    task = getattr(task_instance, "task", None)
    if task is not None:
        try:
            from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
        except ImportError:
            return False
        if isinstance(task, KubernetesPodOperator):
            return True
        operator_class = getattr(task, "operator_class", None)
        if isinstance(operator_class, type) and issubclass(operator_class, KubernetesPodOperator):
            return True
        return False
    name = getattr(task_instance, "operator", None) or getattr(task_instance, "custom_operator_name", None)
    return name in settings.operator_names


def _rendered_namespace(task_instance: Any) -> str | None:
    """The namespace the task rendered (a template field of KubernetesPodOperator), as the metadata
    database keeps it: where the API server marks a task by hand, no task object is at hand (and
    the API server, unlike a worker, may read the database)."""
    try:
        from airflow.models.renderedtifields import RenderedTaskInstanceFields

        fields = RenderedTaskInstanceFields.get_templated_fields(task_instance) or {}
    except Exception:
        log.debug("no rendered fields for %s", getattr(task_instance, "task_id", "?"), exc_info=True)
        return None
    namespace = fields.get("namespace")
    return namespace if isinstance(namespace, str) and namespace else None


def task_instance_detail(task_instance: Any, state: str, settings: Settings) -> dict[str, Any]:
    """The detail functions/shared/intake.ts (orchestratorIntake) parses."""
    task = getattr(task_instance, "task", None)
    namespace = (
        getattr(task, "namespace", None) or _rendered_namespace(task_instance) or settings.default_namespace
    )
    map_index = getattr(task_instance, "map_index", -1)
    return {
        "dag_id": task_instance.dag_id,
        "task_id": task_instance.task_id,
        "run_id": task_instance.run_id,
        "map_index": -1 if map_index is None else int(map_index),
        "try_number": int(getattr(task_instance, "try_number", 0) or 0),
        "state": state,
        "cluster": settings.cluster_name,
        "namespace": namespace,
    }


def report(task_instance: Any, state: str) -> None:
    """Never raises and never blocks: a listener must not slow or fail a task."""
    try:
        settings = load_settings()
        if not settings.listener_configured or not _is_pod_operator(task_instance, settings):
            return
        sender_for(settings).submit(task_instance_detail(task_instance, state, settings))
    except Exception:
        log.exception("Podwarden listener could not report task instance %s", getattr(task_instance, "task_id", "?"))


def _state(task_instance: Any, default: str) -> str:
    state = getattr(task_instance, "state", None)
    value = getattr(state, "value", state)
    return str(value) if value else default


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    try:
        from podwarden_airflow.policy import adapt_if_enabled

        task = getattr(task_instance, "task", None)
        if task is not None:
            adapt_if_enabled(task)
    except Exception:
        log.exception("podwarden-airflow could not adapt task %s", getattr(task_instance, "task_id", "?"))
    report(task_instance, "running")


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    report(task_instance, "success")


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any = None) -> None:
    # In the worker the instance may still read "running" here; only a retry changes the word.
    state = _state(task_instance, "failed")
    report(task_instance, state if state in ("up_for_retry", "upstream_failed") else "failed")
