"""PullWait: the provider's early image-pull failure deferred to Podwarden's verdict."""

from __future__ import annotations

import datetime

from podwarden_airflow.config import Settings
from podwarden_airflow.follow import PodwardenGaveUp
from podwarden_airflow.pull import Hold, PullWait, Raise, Retry, is_pull_failure
from podwarden_airflow.story import podwarden_events

from .support import event, pod

T0 = datetime.datetime(2026, 12, 2, 19, 0, tzinfo=datetime.timezone.utc).timestamp()
PULLING = [{"name": "base", "ready": False, "restartCount": 0, "image": "x", "imageID": "", "state": {"waiting": {"reason": "ErrImagePull", "message": "ThrottlingException: Rate exceeded"}}}]
RUNNING = [{"name": "base", "ready": True, "restartCount": 0, "image": "x", "imageID": "", "state": {"running": {}}}]


def _wait() -> PullWait:
    return PullWait(Settings(grace_seconds=15), T0)


def test_the_providers_pull_failure_is_recognised():
    assert is_pull_failure(Exception("Image cannot be pulled, unable to start: ErrImagePull\nRate exceeded"))
    assert not is_pull_failure(Exception("Pod took too long to start"))


def test_transient_verdict_holds_until_podwardens_deadline_then_the_grace():
    story = podwarden_events([event("ImagePullWaiting", "uid-A", "2026-12-02T19:00:01Z", {"podwarden.io/deadline": "2026-12-02T19:10:00Z"})])
    wait = _wait()
    assert isinstance(wait.step(pod("uid-A", phase="Pending", containers=PULLING), story, T0 + 300), Hold)
    assert isinstance(wait.step(pod("uid-A", phase="Pending", containers=PULLING), story, T0 + 600 + 10), Hold)
    assert wait.step(pod("uid-A", phase="Pending", containers=PULLING), story, T0 + 600 + 16) == Raise(None)


def test_the_image_arriving_hands_back_to_the_provider():
    story = podwarden_events([event("ImagePullWaiting", "uid-A", "2026-12-02T19:00:01Z", {"podwarden.io/deadline": "2026-12-02T19:10:00Z"})])
    assert _wait().step(pod("uid-A", containers=RUNNING), story, T0 + 30) == Retry()


def test_a_permanent_verdict_fails_with_the_registrys_message():
    story = podwarden_events(
        [event("GaveUp", "uid-A", "2026-12-02T19:00:01Z", {"podwarden.io/cause": "ImagePullPermanent"}, "manifest unknown: manifest unknown")]
    )
    step = _wait().step(pod("uid-A", phase="Pending", containers=PULLING), story, T0 + 1)
    assert isinstance(step, Raise) and isinstance(step.error, PodwardenGaveUp)
    assert "manifest unknown" in str(step.error) and "ImagePullPermanent" in str(step.error)


def test_no_verdict_within_the_grace_lets_the_providers_failure_stand():
    wait = _wait()
    pulling = pod("uid-A", phase="Pending", containers=PULLING)
    assert isinstance(wait.step(pulling, [], T0 + 5), Hold)
    assert wait.step(pulling, [], T0 + 16) == Raise(None)
