"""Helpers for the scenario tests: the Kubernetes client of the ground, dedicated nodes, the
preemption driver, and running a scenario DAG with ``dag.test()``."""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException

T = TypeVar("T")
DAGS_FILE = Path(__file__).parent / "dags" / "podwarden_scenarios.py"


def core_api(ground: dict[str, Any]) -> k8s_client.CoreV1Api:
    return k8s_client.CoreV1Api(k8s_config.new_client_from_config(config_file=ground["kubeconfig"]))


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.2) -> T:
    """Polls ``probe`` until it returns something other than None/False; errors count as not yet."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = probe()
            if value is not None and value is not False:
                return value
        except Exception as error:  # the probe's API call may fail while things settle
            last_error = error
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last error: {last_error})")
        time.sleep(every)


def create_dedicated_node(core: k8s_client.CoreV1Api, name: str) -> None:
    """A 1-CPU KWOK node tainted for one scenario: its task pod and a daemon cannot both fit."""
    resources = {"cpu": "1", "memory": "4Gi", "pods": "110"}
    body = k8s_client.V1Node(
        metadata=k8s_client.V1ObjectMeta(
            name=name,
            annotations={"kwok.x-k8s.io/node": "fake"},
            labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
        ),
        spec=k8s_client.V1NodeSpec(
            taints=[k8s_client.V1Taint(key="podwarden.test/dedicated", value=name, effect="NoSchedule")]
        ),
        status=k8s_client.V1NodeStatus(capacity=resources, allocatable=resources),
    )
    try:
        core.create_node(body)
    except ApiException as error:
        if error.status != 409:
            raise


def task_pods(core: k8s_client.CoreV1Api, namespace: str, dag_id: str) -> list[Any]:
    return core.list_namespaced_pod(namespace, label_selector=f"dag_id={dag_id}").items


@dataclasses.dataclass
class Preemptions:
    """Preempts the scenario's task pod ``times`` times with a high-priority daemon pod, as the
    real scheduler does for a daemonset on a new node; lets each re-created pod run."""

    core: k8s_client.CoreV1Api
    namespace: str
    dag_id: str
    node: str
    times: int
    expect_recreate: bool = True
    #: False: a missing re-create or running pod ends the driver quietly (runs without the package).
    strict: bool = True
    #: Called once each victim is gone (before any re-create is awaited), e.g. to mark the task.
    on_gone: Callable[[], None] | None = None
    #: Whether Podwarden has seen the victim (it records a pod at first sight); a victim is
    #: preempted only then, since the scenarios are about a pod Podwarden supervises.
    seen: Callable[[Any], bool] | None = None
    victims: list[str] = dataclasses.field(default_factory=list)
    error: BaseException | None = None

    def start(self) -> Preemptions:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 120) -> None:
        self._thread.join(timeout)
        if self.error and self.strict:
            raise self.error

    def _running_pod(self) -> Any:
        for pod in task_pods(self.core, self.namespace, self.dag_id):
            if pod.status.phase == "Running" and pod.metadata.uid not in self.victims and not pod.metadata.deletion_timestamp:
                return pod
        return None

    def _run(self) -> None:
        try:
            for n in range(self.times):
                victim = wait_for(f"a running pod of {self.dag_id}", self._running_pod, timeout=90)
                if self.seen is not None:
                    wait_for(f"Podwarden to have seen {victim.metadata.name}", lambda: self.seen(victim), timeout=30)
                self.victims.append(victim.metadata.uid)
                daemon = f"daemon-{self.node}-{n}"
                self.core.create_namespaced_pod(
                    self.namespace,
                    k8s_client.V1Pod(
                        metadata=k8s_client.V1ObjectMeta(name=daemon, labels={"podwarden.test/behaviour": "run"}),
                        spec=k8s_client.V1PodSpec(
                            priority_class_name="podwarden-daemon-high",
                            node_selector={"kubernetes.io/hostname": self.node},
                            tolerations=[
                                k8s_client.V1Toleration(
                                    key="podwarden.test/dedicated", operator="Equal", value=self.node, effect="NoSchedule"
                                )
                            ],
                            termination_grace_period_seconds=0,
                            containers=[
                                k8s_client.V1Container(
                                    name="daemon",
                                    image="registry.invalid/calico:1",
                                    resources=k8s_client.V1ResourceRequirements(requests={"cpu": "700m"}),
                                )
                            ],
                        ),
                    ),
                )
                name = victim.metadata.name
                wait_for(f"{name} ({victim.metadata.uid}) to be gone", lambda: self._gone(name, victim.metadata.uid), timeout=60)
                if self.on_gone is not None:
                    self.on_gone()
                if self.expect_recreate:
                    wait_for(f"{name} to be re-created", lambda: self._recreated(name), timeout=60)
                self.core.delete_namespaced_pod(daemon, self.namespace, grace_period_seconds=0)
        except BaseException as error:
            self.error = error

    def _gone(self, name: str, uid: str) -> bool:
        try:
            return self.core.read_namespaced_pod(name, self.namespace).metadata.uid != uid
        except ApiException as error:
            if error.status == 404:
                return True
            raise

    def _recreated(self, name: str) -> bool:
        try:
            return self.core.read_namespaced_pod(name, self.namespace).metadata.uid not in self.victims
        except ApiException as error:
            if error.status == 404:
                return False
            raise


@dataclasses.dataclass
class Outcome:
    state: str
    error: str | None
    seconds: float
    run_id: str


_dags_module: Any = None


def _install_capture() -> Any:
    """A listener that keeps each failed task's error (dag.test() only logs it)."""
    from airflow.sdk.listener import get_listener_manager

    from . import capture

    manager = get_listener_manager()
    if not manager.pm.is_registered(capture):
        manager.add_listener(capture)
    return capture


def scenario_dag(dag_id: str) -> Any:
    global _dags_module
    if _dags_module is None:
        spec = importlib.util.spec_from_file_location("podwarden_scenarios_under_test", DAGS_FILE)
        assert spec and spec.loader
        _dags_module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_dags_module)
    return getattr(_dags_module, dag_id)


def run_dag(dag_id: str) -> Outcome:
    capture = _install_capture()
    capture.errors.pop(dag_id, None)
    dag = scenario_dag(dag_id)
    started = time.monotonic()
    dag_run = dag.test()
    seconds = time.monotonic() - started
    state = _state_in_database(dag_id, dag_run.run_id)
    return Outcome(state=str(state), error=capture.errors.get(dag_id), seconds=seconds, run_id=dag_run.run_id)


def _state_in_database(dag_id: str, run_id: str) -> str | None:
    """The task's state as the metadata database has it (a state set by hand stays there)."""
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).one()
        return getattr(ti.state, "value", ti.state)


def task_key(dag_id: str, run_id: str, task_id: str = "work") -> str:
    """Podwarden's key of the task (its airflow-kpo profile): the pod's identity labels as the
    provider writes them (make_safe_label_value), map_index absent = -1."""
    from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value

    return "/".join([make_safe_label_value(dag_id), make_safe_label_value(task_id), make_safe_label_value(run_id), "-1"])


def mark_failed_by_hand(dag_id: str) -> None:
    """What the API server does when a user marks a running task failed: the state in the metadata
    database, then the listeners' ``on_task_instance_failed`` (Airflow's own function for it)."""
    from sqlalchemy import select

    from airflow.api_fastapi.core_api.services.public.task_instances import _emit_state_listener_hooks
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag_id, TaskInstance.state == "running")
        ).one()
        ti.state = TaskInstanceState.FAILED
        session.flush()
        _emit_state_listener_hooks([ti], TaskInstanceState.FAILED)
