"""The cluster policy (entry point ``airflow.policy``): every KubernetesPodOperator, and every
subclass, follows its pod through Podwarden's decisions. ``[podwarden] enabled = False`` (or
``AIRFLOW__PODWARDEN__ENABLED=False``) turns it off."""

from __future__ import annotations

from typing import Any

from airflow.policies import hookimpl


def adapt_if_enabled(task: Any) -> bool:
    """Adapts ``task`` when the package is on and knows these versions; True when it did."""
    from podwarden_airflow.compat import supported
    from podwarden_airflow.config import load_settings

    if not load_settings().enabled or not supported():
        return False
    from podwarden_airflow.operator import adapt

    return adapt(task)


@hookimpl
def task_policy(task: Any) -> None:
    adapt_if_enabled(task)
