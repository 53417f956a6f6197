"""FollowState: what the operator does when reading its pod by name gives 404 or a stranger."""

from __future__ import annotations

import datetime

import pytest

from podwarden_airflow.config import Settings
from podwarden_airflow.follow import (
    Fail,
    FollowState,
    PodReplacedByStranger,
    PodwardenGaveUp,
    PodwardenRecreateOverdue,
    Return,
    Wait,
)
from podwarden_airflow.story import podwarden_events

from .support import event, pod

T0 = datetime.datetime(2026, 12, 2, 19, 0, tzinfo=datetime.timezone.utc).timestamp()
SETTINGS = Settings(grace_seconds=15, recreate_margin_seconds=30)


def _state(uid: str = "uid-A") -> FollowState:
    return FollowState(SETTINGS, namespace="airflow", name="etl-load-7f3k", uid=uid)


def _pending(due: str) -> list:
    return podwarden_events(
        [event("RecreatePending", "uid-A", "2026-12-02T19:00:00Z", {"podwarden.io/due-at": due, "podwarden.io/next-attempt": "2"})]
    )


def _recreated(new_uid: str, replaces: str) -> dict:
    return event("Recreated", new_uid, "2026-12-02T19:00:03Z", {"podwarden.io/new-uid": new_uid, "podwarden.io/replaces-uid": replaces})


def test_a_404_with_a_pending_recreate_waits_until_due_plus_margin_then_fails_overdue():
    state = _state()
    story = _pending("2026-12-02T19:00:04Z")
    assert isinstance(state.decide(None, story, T0 + 1), Wait)
    assert isinstance(state.decide(None, story, T0 + 4 + 30), Wait)
    step = state.decide(None, story, T0 + 4 + 31)
    assert isinstance(step, Fail) and isinstance(step.error, PodwardenRecreateOverdue)


def test_the_recreated_pod_is_followed_by_its_new_uid():
    state = _state()
    story = podwarden_events([_recreated("uid-B", "uid-A")])
    new_pod = pod("uid-B")
    step = state.decide(new_pod, story, T0 + 3)
    assert step == Return(new_pod)
    assert state.uid == "uid-B"


def test_a_pod_under_the_name_that_podwarden_did_not_create_is_a_stranger():
    state = _state()
    stranger = pod("uid-Z")
    assert isinstance(state.decide(stranger, [], T0), Wait)  # first the grace for Podwarden's word
    step = state.decide(stranger, [], T0 + 16)
    assert isinstance(step, Fail) and isinstance(step.error, PodReplacedByStranger)
    assert "uid-Z" in str(step.error) and "uid-A" in str(step.error)


def test_no_word_within_the_grace_behaves_as_without_podwarden():
    state = _state()
    assert isinstance(state.decide(None, [], T0), Wait)
    assert state.decide(None, [], T0 + 16) == Fail(None)


def test_gave_up_fails_with_podwardens_cause_and_evidence():
    state = _state()
    story = podwarden_events(
        [event("GaveUp", "uid-A", "2026-12-02T19:00:00Z", {"podwarden.io/cause": "DisruptionBudgetExhausted"}, "preempted 4 times (budget 3)")]
    )
    step = state.decide(None, story, T0)
    assert isinstance(step, Fail) and isinstance(step.error, PodwardenGaveUp)
    text = str(step.error)
    assert "DisruptionBudgetExhausted" in text and "preempted" in text and "preempted 4 times (budget 3)" in text


@pytest.mark.parametrize(("exit_code", "phase"), [(0, "Succeeded"), (3, "Failed")])
def test_reaped_after_the_main_container_ended_settles_by_its_exit_code(exit_code, phase):
    state = _state()
    last = pod(
        "uid-A",
        containers=[
            {"name": "base", "ready": False, "restartCount": 0, "image": "x", "imageID": "", "state": {"terminated": {"exitCode": exit_code, "finishedAt": "2026-12-02T19:00:00Z"}}},
            {"name": "log-shipper", "ready": True, "restartCount": 0, "image": "y", "imageID": "", "state": {"running": {}}},
        ],
    )
    state.adopt(last)
    story = podwarden_events([event("Reaped", "uid-A", "2026-12-02T19:00:10Z", {"podwarden.io/rule": "sidecar-zombie"})])
    step = state.decide(None, story, T0 + 10)
    assert isinstance(step, Return)
    assert step.pod.status.phase == phase
    assert last.status.phase == "Running"  # the pod read is not changed


def test_reaped_before_the_main_container_ended_is_a_failure():
    state = _state()
    state.adopt(pod("uid-A"))
    story = podwarden_events([event("Reaped", "uid-A", "2026-12-02T19:00:10Z", {"podwarden.io/rule": "finished-task"})])
    assert state.decide(None, story, T0 + 10) == Fail(None)
