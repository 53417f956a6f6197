"""What Podwarden has said about a pod, read from the Kubernetes Events it writes on it.

Pure: takes events as the Kubernetes client returns them (``kubernetes`` or ``kubernetes_asyncio``
models, or plain dicts as ``kubectl get events -o json`` prints them) and answers questions; no I/O.
The contract (EVENTS-CONTRACT.md in the Podwarden repository): Podwarden's events have
``source.component == "podwarden"``, ``involvedObject.uid`` is the pod the decision is about, and
annotations ``podwarden.io/*`` carry the details.

Nothing here classifies registry messages: Podwarden's TypeScript classifier is the one source of
truth, and its verdict arrives as an ``ImagePullWaiting`` or ``GaveUp`` event.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping
from typing import Any

SOURCE_COMPONENT = "podwarden"
REPORTING_COMPONENT = "podwarden.io/podwarden"

RECREATE_PENDING = "RecreatePending"
RECREATED = "Recreated"
GAVE_UP = "GaveUp"
IMAGE_PULL_WAITING = "ImagePullWaiting"
REAPED = "Reaped"

ANNOTATION = "podwarden.io/"


@dataclasses.dataclass(frozen=True)
class StoryEvent:
    reason: str
    #: The uid of the pod the decision is about.
    uid: str
    message: str
    annotations: Mapping[str, str]
    at: datetime.datetime | None

    def annotation(self, name: str) -> str | None:
        return self.annotations.get(ANNOTATION + name)


@dataclasses.dataclass(frozen=True)
class Follow:
    """Podwarden re-created the pod: same name, this uid."""

    uid: str


@dataclasses.dataclass(frozen=True)
class WaitUntil:
    """A re-create (or a pull re-check) is pending; wait, but not past this time (epoch seconds)."""

    deadline: float
    why: str


@dataclasses.dataclass(frozen=True)
class GaveUp:
    cause: str
    message: str


@dataclasses.dataclass(frozen=True)
class Reaped:
    rule: str
    exit_code: int | None
    message: str


@dataclasses.dataclass(frozen=True)
class NoWord:
    """Podwarden has said nothing that answers the question (yet)."""


NO_WORD = NoWord()


def _field(obj: Any, snake: str, camel: str | None = None) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        value = obj.get(camel or snake)
        return obj.get(snake) if value is None and camel else value
    return getattr(obj, snake, None)


def _time(value: Any) -> datetime.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def _epoch(value: str | None) -> float | None:
    parsed = _time(value)
    return parsed.timestamp() if parsed else None


def podwarden_events(events: Iterable[Any]) -> list[StoryEvent]:
    """Podwarden's events among ``events`` (other components' are dropped), oldest first."""
    story: list[StoryEvent] = []
    for event in events:
        source = _field(event, "source")
        component = _field(source, "component")
        reporting = _field(event, "reporting_component", "reportingComponent")
        if component != SOURCE_COMPONENT and reporting != REPORTING_COMPONENT:
            continue
        involved = _field(event, "involved_object", "involvedObject")
        uid = _field(involved, "uid")
        reason = _field(event, "reason")
        if not uid or not reason:
            continue
        metadata = _field(event, "metadata")
        annotations = _field(metadata, "annotations") or {}
        at = (
            _time(_field(event, "event_time", "eventTime"))
            or _time(_field(event, "last_timestamp", "lastTimestamp"))
            or _time(_field(event, "first_timestamp", "firstTimestamp"))
        )
        story.append(
            StoryEvent(
                reason=str(reason),
                uid=str(uid),
                message=str(_field(event, "message") or ""),
                annotations={str(k): str(v) for k, v in dict(annotations).items()},
                at=at,
            )
        )
    epoch = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    story.sort(key=lambda e: e.at or epoch)
    return story


def successors(story: list[StoryEvent], uid: str) -> list[str]:
    """The uids Podwarden re-created ``uid`` as, in order (A -> B -> C gives [B, C] for A)."""
    chain: list[str] = []
    current = uid
    seen = {uid}
    while True:
        nxt = next(
            (
                e.annotation("new-uid") or e.uid
                for e in story
                if e.reason == RECREATED and e.annotation("replaces-uid") == current
            ),
            None,
        )
        if nxt is None or nxt in seen:
            return chain
        chain.append(nxt)
        seen.add(nxt)
        current = nxt


def _gave_up(story: list[StoryEvent], uid: str) -> GaveUp | None:
    for event in reversed(story):
        if event.reason == GAVE_UP and event.uid == uid:
            return GaveUp(cause=event.annotation("cause") or "unknown", message=event.message)
    return None


def missing_pod_verdict(story: list[StoryEvent], uid: str, margin_seconds: float) -> Any:
    """What to do when the pod with ``uid`` is gone (404, or its name holds another uid).

    A re-create that happened wins (follow it: reading the pod confirms it); then a final word
    (gave up, reaped); then a pending re-create (wait until its due time plus the margin).
    """
    chain = successors(story, uid)
    if chain:
        return Follow(chain[-1])
    gave_up = _gave_up(story, uid)
    if gave_up:
        return gave_up
    for event in reversed(story):
        if event.reason == REAPED and event.uid == uid:
            code = event.annotation("exit-code")
            return Reaped(
                rule=event.annotation("rule") or "unknown",
                exit_code=int(code) if code is not None and code.lstrip("-").isdigit() else None,
                message=event.message,
            )
    due_times = [
        due
        for e in story
        if e.reason == RECREATE_PENDING and e.uid == uid
        for due in [_epoch(e.annotation("due-at"))]
        if due is not None
    ]
    if due_times:
        attempt = max(
            (e.annotation("next-attempt") or "?" for e in story if e.reason == RECREATE_PENDING and e.uid == uid),
            key=str,
        )
        return WaitUntil(
            deadline=max(due_times) + margin_seconds,
            why=f"Podwarden will re-create the pod (attempt {attempt})",
        )
    return NO_WORD


def pull_verdict(story: list[StoryEvent], uid: str) -> Any:
    """Podwarden's verdict on the image-pull error of the pod with ``uid``.

    ``GaveUp`` (a permanent error, or its deadline passed), ``WaitUntil`` its deadline while it
    deems the error transient, or ``NO_WORD``.
    """
    gave_up = _gave_up(story, uid)
    if gave_up:
        return gave_up
    deadlines = [
        deadline
        for e in story
        if e.reason == IMAGE_PULL_WAITING and e.uid == uid
        for deadline in [_epoch(e.annotation("deadline"))]
        if deadline is not None
    ]
    if deadlines:
        return WaitUntil(deadline=max(deadlines), why="Podwarden deems the image-pull error transient")
    return NO_WORD
