"""Real KubernetesPodOperator tasks (``dag.test()``, sqlite, ``retries=0``) on the local control
plane with Podwarden's loop running: the seeds, with and without podwarden-airflow.

The DAG objects run here come from importing the DAG file, which no DagBag (and so no cluster
policy) has seen: podwarden-airflow's listener adapts the task when it starts running, which is
the path ``dag.test()`` takes. ``test_policy_path`` in tests/unit proves the policy path."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from .dags.podwarden_scenarios import node_name
from .support import (
    Preemptions,
    core_api,
    create_dedicated_node,
    mark_failed_by_hand,
    run_dag,
    task_key,
    task_pods,
    wait_for,
)

pytestmark = pytest.mark.cluster


def _seen_by_podwarden(ground: dict[str, Any]) -> Callable[[Any], bool]:
    """Whether Podwarden's record of the pod's task follows that very pod (its uid)."""

    def seen(pod: Any) -> bool:
        labels = pod.metadata.labels
        # The labels are already label-safe, which task_key leaves as they are.
        record = _audit(ground, task_key(labels["dag_id"], labels["run_id"], labels["task_id"]))["task"]
        return record is not None and record.get("podUid") == pod.metadata.uid

    return seen


def _preempted_run(ground: dict[str, Any], dag_id: str, times: int, *, expect_recreate: bool = True, strict: bool = True):
    core = core_api(ground)
    create_dedicated_node(core, node_name(dag_id))
    driver = Preemptions(
        core, ground["namespace"], dag_id, node_name(dag_id), times, expect_recreate, strict, seen=_seen_by_podwarden(ground)
    ).start()
    outcome = run_dag(dag_id)
    driver.join()
    return outcome, driver


def _audit(ground: dict[str, Any], key: str) -> dict[str, Any]:
    url = f"{ground['eventsEndpoint']}/podwarden/audit?key={urllib.parse.quote(key)}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def _received(ground: dict[str, Any]) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{ground['eventsEndpoint']}/podwarden/received", timeout=10) as answer:
        return json.loads(answer.read())


def _no_pod_left(ground: dict[str, Any], dag_id: str, timeout: float = 60) -> None:
    core = core_api(ground)
    wait_for(
        f"no pod of {dag_id} left",
        lambda: not [p for p in task_pods(core, ground["namespace"], dag_id) if not p.metadata.deletion_timestamp],
        timeout=timeout,
    )


class TestSwitchedOff:
    """``AIRFLOW__PODWARDEN__ENABLED=False``: the provider as it is, the seed's failure reproduced."""

    def test_sync_preemption_fails_with_the_seeds_404(self, ground, monkeypatch):
        monkeypatch.setenv("AIRFLOW__PODWARDEN__ENABLED", "False")
        outcome, _ = _preempted_run(ground, "preempt_sync_off", 1, expect_recreate=False, strict=False)
        assert outcome.state == "failed"
        # The seed: PodManager.read_pod's 404, not retried by generic_api_retry.
        assert outcome.error is not None and "(404)" in outcome.error and "NotFound" in outcome.error
        assert "Podwarden" not in outcome.error  # nothing of the package took part

    def test_deferrable_preemption_fails_with_pod_not_found(self, ground, monkeypatch):
        monkeypatch.setenv("AIRFLOW__PODWARDEN__ENABLED", "False")
        # Podwarden's first re-create (2 s back-off) can fit in the trigger's ~3 s of retries;
        # the second (4 s) does not: the seed's PodNotFoundException.
        outcome, _ = _preempted_run(ground, "preempt_deferrable_off", 2, strict=False)
        assert outcome.state == "failed"
        assert outcome.error is not None and "not found" in outcome.error.lower()
        assert "Podwarden" not in outcome.error  # nothing of the package took part


    def test_ecr_throttling_fails_on_the_first_poll(self, ground, monkeypatch):
        monkeypatch.setenv("AIRFLOW__PODWARDEN__ENABLED", "False")
        outcome = run_dag("pull_throttled_off")
        assert outcome.state == "failed"
        # The seed: the provider's early-termination check takes ECR's throttling as fatal.
        assert outcome.error is not None and "Image cannot be pulled" in outcome.error and "Rate exceeded" in outcome.error
        assert "Podwarden" not in outcome.error


class TestPreemption:
    @pytest.mark.parametrize(
        ("dag_id", "times"),
        [("preempt_sync_b1", 1), ("preempt_deferrable_b1", 1), ("preempt_sync_b3", 3), ("preempt_deferrable_b3", 3)],
    )
    def test_task_succeeds_through_podwardens_recreates(self, ground, dag_id, times):
        outcome, driver = _preempted_run(ground, dag_id, times)
        assert outcome.state == "success", outcome.error
        assert len(driver.victims) == times
        _no_pod_left(ground, dag_id)

    def test_budget_spent_fails_naming_the_preemption(self, ground):
        outcome, driver = _preempted_run(ground, "preempt_budget_spent", 4, expect_recreate=False)
        assert outcome.state == "failed"
        assert outcome.error is not None
        assert "DisruptionBudgetExhausted" in outcome.error and "preempt" in outcome.error.lower()
        _no_pod_left(ground, "preempt_budget_spent")


class TestImagePulls:
    def test_ecr_throttling_for_30s_then_the_image_arrives(self, ground):
        outcome = run_dag("pull_throttled_then_ok")
        assert outcome.state == "success", outcome.error
        assert outcome.seconds >= 25  # it really waited out the throttling
        # The operator reads the pod's end from the API server; Podwarden's record follows on the
        # ground's next poll, so it is waited for, not read at once.
        key = task_key("pull_throttled_then_ok", outcome.run_id)
        wait_for(
            "Podwarden's record to end Succeeded",
            lambda: (_audit(ground, key)["task"] or {}).get("state") == "Succeeded",
            timeout=30,
        )

    def test_deferrable_waits_out_ecr_throttling_in_the_trigger(self, ground):
        outcome = run_dag("pull_throttled_deferrable")
        assert outcome.state == "success", outcome.error
        assert outcome.seconds >= 15  # it really waited out the throttling

    def test_manifest_unknown_fails_fast_with_the_registrys_message(self, ground):
        outcome = run_dag("pull_manifest_unknown")
        assert outcome.state == "failed"
        assert outcome.error is not None and "manifest unknown" in outcome.error
        assert "ImagePullPermanent" in outcome.error  # Podwarden's verdict, not the provider's own
        assert outcome.seconds < 15  # the verdict, not the grace

    def test_pull_deadline_passed_fails_with_podwardens_cause(self, ground):
        outcome = run_dag("pull_deadline_passed")
        assert outcome.state == "failed"
        assert outcome.error is not None and "ImagePullDeadline" in outcome.error


class TestSidecarZombie:
    def test_ends_by_the_main_exit_code_when_the_sidecar_never_exits(self, ground):
        outcome = run_dag("sidecar_never_exits")
        assert outcome.state == "success", outcome.error
        _no_pod_left(ground, "sidecar_never_exits")

    def test_podwardens_reap_after_the_main_container_ended_is_not_a_failure(self, ground, monkeypatch):
        # Airflow's grace longer than Podwarden's (3 s on the ground): Podwarden reaps the pod
        # first, and the operator, reading 404, ends the task by the main container's exit code.
        monkeypatch.setenv("AIRFLOW__PODWARDEN__SIDECAR_GRACE_SECONDS", "120")
        outcome = run_dag("sidecar_reaped_first")
        assert outcome.state == "success", outcome.error
        assert outcome.seconds < 100  # not Airflow's own grace
        _no_pod_left(ground, "sidecar_reaped_first")
        trail = _audit(ground, task_key("sidecar_reaped_first", outcome.run_id))
        reaps = [e for e in trail["audit"] if e["what"] == "reap:sidecar-zombie" and e.get("outcome") == "deleted"]
        assert reaps, trail["audit"]
        assert trail["task"]["state"] == "Succeeded" and trail["task"]["mainExitCode"] == 0

    def test_deferrable_ends_by_the_main_exit_code(self, ground):
        outcome = run_dag("sidecar_deferrable")
        assert outcome.state == "success", outcome.error
        _no_pod_left(ground, "sidecar_deferrable")

    def test_a_failed_main_container_fails_the_task(self, ground):
        outcome = run_dag("sidecar_main_failed")
        assert outcome.state == "failed"
        assert outcome.error is not None
        # The error the task ended with (the last of the chain) names the main container's failure:
        # the provider's own (Airflow's grace ended first) or Podwarden's (it reaped first; the 404
        # the operator read then is only its cause).
        final = outcome.error.split("-- while handling --")[-1]
        assert "returned a failure" in final or "ContainerFailed" in final, outcome.error
        _no_pod_left(ground, "sidecar_main_failed")


class TestEndedInAirflow:
    def test_marked_failed_while_its_pod_is_recreated_leaves_no_pod_running(self, ground):
        dag_id = "preempt_marked_failed"
        core = core_api(ground)
        create_dedicated_node(core, node_name(dag_id))
        driver = Preemptions(
            core,
            ground["namespace"],
            dag_id,
            node_name(dag_id),
            1,
            expect_recreate=False,
            on_gone=lambda: mark_failed_by_hand(dag_id),
            seen=_seen_by_podwarden(ground),
        ).start()
        outcome = run_dag(dag_id)
        driver.join()
        assert outcome.state == "failed"
        # dag.test() has no supervisor to kill the task: the operator itself stops on Podwarden's word.
        assert outcome.error is not None and "EndedByOrchestrator" in outcome.error, outcome.error
        _no_pod_left(ground, dag_id)
        record = _audit(ground, task_key(dag_id, outcome.run_id))["task"]
        assert record["state"] == "Failed" and record["cause"] == "EndedByOrchestrator", record
        told = [r for r in _received(ground) if r["detail"].get("dag_id") == dag_id and r["detail"]["state"] == "failed"]
        assert told and told[0]["detail"]["namespace"] == ground["namespace"], told
