"""Deferring the provider's image-pull verdict to Podwarden's.

The provider's early-termination check (``detect_pod_terminate_early_issues``) fails a task on
the first poll that shows an ``ErrImagePull`` whose message it does not know as transient. With
Podwarden watching, that failure is held back: while Podwarden says the error is transient
(``ImagePullWaiting``) the task waits until Podwarden's deadline; Podwarden's ``GaveUp`` fails it
with Podwarden's evidence (the registry's message); without a word from Podwarden within the grace,
the provider's own failure stands.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from podwarden_airflow.config import Settings
from podwarden_airflow.follow import PodwardenGaveUp
from podwarden_airflow.pods import in_pull_error, pod_uid
from podwarden_airflow.story import GaveUp, StoryEvent, WaitUntil, pull_verdict

#: How the provider's ``detect_pod_terminate_early_issues`` words an image-pull failure.
PROVIDER_PULL_FAILURE = "Image cannot be pulled"


def is_pull_failure(error: BaseException) -> bool:
    return str(error).startswith(PROVIDER_PULL_FAILURE)


@dataclasses.dataclass(frozen=True)
class Retry:
    """The pod moved on (its image pulled): hand back to the provider's own wait."""


@dataclasses.dataclass(frozen=True)
class Hold:
    why: str


@dataclasses.dataclass(frozen=True)
class Raise:
    #: None: the provider's own failure stands.
    error: Exception | None


class PullWait:
    """One held-back image-pull failure; ``step`` is called each poll with fresh pod and events."""

    def __init__(self, settings: Settings, started: float):
        self.settings = settings
        self.started = started

    def step(self, pod: Any, story: list[StoryEvent], now: float) -> Retry | Hold | Raise:
        metadata = pod.metadata
        verdict = pull_verdict(story, pod_uid(pod) or "")
        if isinstance(verdict, GaveUp):
            return Raise(PodwardenGaveUp(metadata.namespace, metadata.name, verdict.cause, verdict.message))
        if not in_pull_error(pod):
            return Retry()
        if isinstance(verdict, WaitUntil):
            if now <= verdict.deadline:
                return Hold(verdict.why)
            # Past Podwarden's deadline: its GaveUp (ImagePullDeadline) is due; give it the grace.
            if now <= verdict.deadline + self.settings.grace_seconds:
                return Hold("Podwarden's pull deadline passed; waiting for its verdict")
            return Raise(None)
        if now - self.started <= self.settings.grace_seconds:
            return Hold("waiting for Podwarden's verdict on the image-pull error")
        return Raise(None)
