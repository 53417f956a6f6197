"""The DAGs of the Airflow scenarios (tests/cluster/test_scenarios.py): one KubernetesPodOperator
task each, against the ground the tests started (PODWARDEN_GROUND_STATE names its state file).
Without a ground, the file defines no DAG. KWOK plays the kubelet: labels and annotations
``podwarden.test/*`` steer what the pod does (scripts/controlplane/kwok-stages.yaml)."""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG
from kubernetes.client import models as k8s

IMAGE = "registry.invalid/podwarden/task:1"
TAINT_KEY = "podwarden.test/dedicated"


def _ground() -> dict[str, Any] | None:
    path = os.environ.get("PODWARDEN_GROUND_STATE")
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


#: dag_id -> what its one task does. ``node`` = a dedicated node (created by the test) the task
#: pod is pinned to, so a daemon pod can preempt it there.
SCENARIOS: dict[str, dict[str, Any]] = {
    "preempt_sync_off": {"node": True, "run_for": "4s"},
    "preempt_deferrable_off": {"node": True, "run_for": "4s", "deferrable": True},
    "preempt_sync_b1": {"node": True, "run_for": "4s"},
    "preempt_deferrable_b1": {"node": True, "run_for": "4s", "deferrable": True},
    "preempt_sync_b3": {"node": True, "run_for": "4s"},
    "preempt_deferrable_b3": {"node": True, "run_for": "4s", "deferrable": True},
    "preempt_budget_spent": {"node": True, "run_for": "30s"},
    "preempt_marked_failed": {"node": True, "run_for": "30s"},
    "pull_throttled_then_ok": {
        "behaviour": "pull-error",
        "pull_message": "failed to pull and unpack image: failed to resolve reference: unexpected status from HEAD request: ThrottlingException: Rate exceeded",
        "clears_after": "30",
        "run_for": "2s",
    },
    "pull_throttled_deferrable": {
        "behaviour": "pull-error",
        "pull_message": "failed to pull and unpack image: failed to resolve reference: unexpected status from HEAD request: ThrottlingException: Rate exceeded",
        "clears_after": "20",
        "run_for": "2s",
        "deferrable": True,
    },
    "pull_throttled_off": {
        "behaviour": "pull-error",
        "pull_message": "failed to pull and unpack image: failed to resolve reference: unexpected status from HEAD request: ThrottlingException: Rate exceeded",
        "clears_after": "20",
        "run_for": "2s",
    },
    "pull_manifest_unknown": {
        "behaviour": "pull-error",
        "pull_message": "failed to pull and unpack image: failed to resolve reference: registry.invalid/podwarden/task:1: not found: manifest unknown: manifest unknown",
    },
    "pull_deadline_passed": {
        "behaviour": "pull-error",
        "pull_message": "failed to pull and unpack image: unexpected status from HEAD request: ThrottlingException: Rate exceeded",
        "annotations": {"podwarden.io/pull-deadline": "12s"},
    },
    "sidecar_never_exits": {"behaviour": "zombie-sidecar", "run_for": "1s", "sidecar": True},
    "sidecar_reaped_first": {"behaviour": "zombie-sidecar", "run_for": "1s", "sidecar": True},
    "sidecar_deferrable": {"behaviour": "zombie-sidecar", "run_for": "1s", "sidecar": True, "deferrable": True},
    "sidecar_main_failed": {"behaviour": "zombie-sidecar", "run_for": "1s", "sidecar": True, "exit_code": "3"},
}


def scenario_dag(dag_id: str, ground: dict[str, Any]) -> DAG:
    spec = SCENARIOS[dag_id]
    labels = {"podwarden.test/behaviour": spec.get("behaviour", "exit"), "podwarden.test/exit-code": spec.get("exit_code", "0")}
    annotations = dict(spec.get("annotations", {}))
    if "run_for" in spec:
        annotations["podwarden.test/run-for"] = spec["run_for"]
    if "pull_message" in spec:
        annotations["podwarden.test/pull-message"] = spec["pull_message"]
    if "clears_after" in spec:
        annotations["podwarden.test/pull-clears-after"] = spec["clears_after"]
    placement: dict[str, Any] = {}
    if spec.get("node"):
        node = node_name(dag_id)
        placement = {
            "node_selector": {"kubernetes.io/hostname": node},
            "tolerations": [k8s.V1Toleration(key=TAINT_KEY, operator="Equal", value=node, effect="NoSchedule")],
            "priority_class_name": "podwarden-task-low",
            "container_resources": k8s.V1ResourceRequirements(requests={"cpu": "700m"}),
        }
    extra: dict[str, Any] = {}
    if spec.get("sidecar"):
        extra["full_pod_spec"] = k8s.V1Pod(
            spec=k8s.V1PodSpec(
                containers=[
                    k8s.V1Container(name="base"),
                    k8s.V1Container(name="log-shipper", image="registry.invalid/alpine:3", command=["sleep", "infinity"]),
                ]
            )
        )
    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        KubernetesPodOperator(
            task_id="work",
            name=dag_id.replace("_", "-"),
            namespace=ground["namespace"],
            image=IMAGE,
            cmds=["python", "-m", "task"],
            labels=labels,
            annotations=annotations,
            kubernetes_conn_id=None,
            config_file=ground["kubeconfig"],
            in_cluster=False,
            get_logs=False,
            do_xcom_push=False,
            retries=0,
            termination_grace_period=1,
            startup_timeout_seconds=120,
            startup_check_interval_seconds=1,
            poll_interval=1,
            deferrable=bool(spec.get("deferrable")),
            **placement,
            **extra,
        )
    return dag


def node_name(dag_id: str) -> str:
    return "pw-" + dag_id.replace("_", "-")


_ground_state = _ground()
if _ground_state is not None:
    for _dag_id in SCENARIOS:
        globals()[_dag_id] = scenario_dag(_dag_id, _ground_state)
