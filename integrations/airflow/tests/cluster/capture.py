"""A test listener: the error each failed task ended with, by dag_id (dag.test() only logs it)."""

from __future__ import annotations

from typing import Any

from airflow.listeners import hookimpl

errors: dict[str, str] = {}


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any = None) -> None:
    # The whole chain: the provider's cleanup raises its own error while handling the first one.
    texts = []
    while isinstance(error, BaseException) and len(texts) < 10:
        texts.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    errors[task_instance.dag_id] = "\n-- while handling --\n".join(reversed(texts)) if texts else str(error or "")
