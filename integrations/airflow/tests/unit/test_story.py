"""Reading Podwarden's story from the Events on a pod (recorded as lib/core/story.ts writes them)."""

from __future__ import annotations

import datetime

from podwarden_airflow.story import (
    NO_WORD,
    Follow,
    GaveUp,
    Reaped,
    WaitUntil,
    missing_pod_verdict,
    podwarden_events,
    pull_verdict,
    successors,
)

from .support import event, model, recorded


def _recorded_story():
    return podwarden_events(recorded("preemption-events.json")["items"])


def test_only_podwardens_events_are_read_and_oldest_first():
    story = _recorded_story()
    assert [e.reason for e in story][:2] == ["RecreatePending", "RecreatePending"]
    assert "Preempted" not in {e.reason for e in story}  # the scheduler's, not Podwarden's
    times = [e.at for e in story]
    assert times == sorted(times)


def test_events_read_the_same_from_client_models_and_from_dicts():
    items = recorded("preemption-events.json")["items"]
    from_dicts = podwarden_events(items)
    from_models = podwarden_events([model(item, "CoreV1Event") for item in items])
    assert [(e.reason, e.uid, dict(e.annotations)) for e in from_models] == [
        (e.reason, e.uid, dict(e.annotations)) for e in from_dicts
    ]


def test_successors_follow_the_chain_of_recreates():
    story = _recorded_story()
    # uid-X's Recreated comes from another component: not part of the chain.
    assert successors(story, "uid-A") == ["uid-B", "uid-C"]
    assert successors(story, "uid-B") == ["uid-C"]
    assert successors(story, "uid-C") == []
    assert successors(story, "uid-unknown") == []


def test_a_recreate_that_happened_is_followed_before_anything_else():
    verdict = missing_pod_verdict(_recorded_story(), "uid-A", 30)
    assert verdict == Follow("uid-C")


def test_a_pending_recreate_waits_until_the_latest_due_time_plus_the_margin():
    story = podwarden_events(
        [
            event("RecreatePending", "uid-A", "2026-12-02T19:00:00Z", {"podwarden.io/due-at": "2026-12-02T19:00:02Z", "podwarden.io/next-attempt": "2"}),
            event("RecreatePending", "uid-A", "2026-12-02T19:00:01Z", {"podwarden.io/due-at": "2026-12-02T19:00:06Z", "podwarden.io/next-attempt": "2"}),
        ]
    )
    verdict = missing_pod_verdict(story, "uid-A", 30)
    assert isinstance(verdict, WaitUntil)
    due = datetime.datetime(2026, 12, 2, 19, 0, 6, tzinfo=datetime.timezone.utc).timestamp()
    assert verdict.deadline == due + 30
    assert "attempt 2" in verdict.why


def test_gave_up_and_reaped_are_final_words():
    gave_up = podwarden_events(
        [event("GaveUp", "uid-A", "2026-12-02T19:00:00Z", {"podwarden.io/cause": "DisruptionBudgetExhausted"}, "preempted 4 times")]
    )
    assert missing_pod_verdict(gave_up, "uid-A", 30) == GaveUp("DisruptionBudgetExhausted", "preempted 4 times")
    reaped = podwarden_events(
        [event("Reaped", "uid-A", "2026-12-02T19:00:00Z", {"podwarden.io/rule": "sidecar-zombie", "podwarden.io/exit-code": "0"})]
    )
    assert missing_pod_verdict(reaped, "uid-A", 30) == Reaped("sidecar-zombie", 0, "")


def test_another_components_event_with_podwardens_reason_is_ignored():
    forged = podwarden_events([event("GaveUp", "uid-A", "2026-12-02T19:00:00Z", component="someone-else")])
    assert missing_pod_verdict(forged, "uid-A", 30) is NO_WORD


def test_words_about_another_uid_are_not_taken_for_this_pod():
    story = podwarden_events([event("GaveUp", "uid-B", "2026-12-02T19:00:00Z", {"podwarden.io/cause": "ImagePullPermanent"})])
    assert missing_pod_verdict(story, "uid-A", 30) is NO_WORD
    assert pull_verdict(story, "uid-A") is NO_WORD


def test_pull_verdicts():
    waiting = podwarden_events(
        [event("ImagePullWaiting", "uid-A", "2026-12-02T19:00:00Z", {"podwarden.io/deadline": "2026-12-02T19:10:00Z"})]
    )
    verdict = pull_verdict(waiting, "uid-A")
    assert isinstance(verdict, WaitUntil)
    assert verdict.deadline == datetime.datetime(2026, 12, 2, 19, 10, tzinfo=datetime.timezone.utc).timestamp()
    permanent = podwarden_events(
        waiting[:0]
        + [event("GaveUp", "uid-A", "2026-12-02T19:00:01Z", {"podwarden.io/cause": "ImagePullPermanent"}, "manifest unknown")]
    )
    assert pull_verdict(permanent, "uid-A") == GaveUp("ImagePullPermanent", "manifest unknown")
