"""Following one task pod by uid through Podwarden's re-creates.

The operator reads its pod by name. After a preemption that read answers 404 for a few seconds,
then the re-created pod (same name, new uid). :class:`FollowState` decides, from what the read gave
and what Podwarden's Events say, whether to return a pod, wait, or fail; :class:`SyncPodFollower`
and :class:`AsyncPodFollower` do the I/O for the worker (``kubernetes``) and the triggerer
(``kubernetes_asyncio``). Writes by name (delete, patch) get a uid precondition, so the operator's
cleanup acts on the pod it follows and never on a newer pod that happens to have the name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

from podwarden_airflow.config import Settings
from podwarden_airflow.pods import pod_uid, settled_by_main_container, terminated_state
from podwarden_airflow.story import (
    NoWord,
    Reaped,
    StoryEvent,
    WaitUntil,
    missing_pod_verdict,
    podwarden_events,
    successors,
)
from podwarden_airflow.story import GaveUp as GaveUpVerdict

log = logging.getLogger(__name__)

CAUSE_TEXT = {
    "DisruptionBudgetExhausted": "the pod was disrupted (preempted or evicted) more often than the re-create budget allows",
    "DisruptedNoRecreate": "the pod was disrupted (preempted or evicted) and its podwarden.io/recreate policy forbids a re-create",
    "ImagePullPermanent": "the image cannot be pulled (a permanent registry error)",
    "ImagePullDeadline": "the image could not be pulled before Podwarden's pull deadline",
    "StartupDeadline": "the main container did not start before Podwarden's startup deadline",
    "ContainerFailed": "the main container failed",
    "EndedByOrchestrator": "Airflow ended the task",
}


class PodwardenError(Exception):
    """Base of the package's task failures (the operator surfaces them as the task's error)."""


class PodwardenGaveUp(PodwardenError):
    def __init__(self, namespace: str, name: str, cause: str, evidence: str):
        self.cause = cause
        self.evidence = evidence
        text = CAUSE_TEXT.get(cause, cause)
        super().__init__(f"Podwarden gave up on pod {namespace}/{name}: {text} ({cause}). {evidence}".strip())


class PodwardenRecreateOverdue(PodwardenError):
    pass


class PodReplacedByStranger(PodwardenError):
    pass


@dataclasses.dataclass(frozen=True)
class Return:
    pod: Any


@dataclasses.dataclass(frozen=True)
class Wait:
    why: str


@dataclasses.dataclass(frozen=True)
class Fail:
    #: None: re-raise what the read raised (behave as without Podwarden).
    error: Exception | None


class FollowState:
    """The followed pod (namespace, name, uid) and the decision rules; no I/O."""

    def __init__(self, settings: Settings, *, namespace: str | None = None, name: str | None = None, uid: str | None = None):
        self.settings = settings
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.last_pod: Any = None
        self._trouble_since: float | None = None

    def follows(self, name: str, namespace: str) -> bool:
        return (self.name is None or self.name == name) and (self.namespace is None or self.namespace == namespace)

    def adopt(self, pod: Any) -> None:
        metadata = pod.metadata
        if self.uid is not None and metadata.uid != self.uid:
            log.warning(
                "Podwarden re-created pod %s/%s: following uid %s (was %s)",
                metadata.namespace,
                metadata.name,
                metadata.uid,
                self.uid,
            )
        self.namespace = metadata.namespace or self.namespace
        self.name = metadata.name or self.name
        self.uid = metadata.uid or self.uid
        self.last_pod = pod
        self._trouble_since = None

    def is_followed(self, pod: Any) -> bool:
        return self.uid is None or pod_uid(pod) == self.uid

    def decide(self, pod: Any, story: list[StoryEvent], now: float) -> Return | Wait | Fail:
        """``pod`` is what reading by name gave: None for 404, or a pod whose uid is not the followed one."""
        chain = successors(story, self.uid) if self.uid else []
        current = chain[-1] if chain else self.uid
        if pod is not None and pod_uid(pod) == current:
            self.adopt(pod)
            return Return(pod)
        if self._trouble_since is None:
            self._trouble_since = now
        where = f"{self.namespace}/{self.name}"
        verdict = missing_pod_verdict(story, current, self.settings.recreate_margin_seconds) if current else None
        if isinstance(verdict, GaveUpVerdict):
            return Fail(PodwardenGaveUp(self.namespace or "", self.name or "", verdict.cause, verdict.message))
        if isinstance(verdict, Reaped) and pod is None:
            last = self.last_pod
            if last is not None and terminated_state(last, self._main_container) is not None:
                log.info(
                    "Podwarden reaped pod %s (rule %s) after its main container ended: the task ends by that container",
                    where,
                    verdict.rule,
                )
                return Return(settled_by_main_container(last, self._main_container))
            return Fail(None)
        if isinstance(verdict, WaitUntil):
            if now <= verdict.deadline:
                return Wait(f"{verdict.why}, due by {_iso(verdict.deadline)}")
            return Fail(
                PodwardenRecreateOverdue(
                    f"pod {where}: {verdict.why}, but no re-created pod appeared by {_iso(verdict.deadline)}"
                )
            )
        if now - self._trouble_since <= self.settings.grace_seconds:
            return Wait("waiting for Podwarden's word on the missing pod")
        if pod is not None:
            return Fail(
                PodReplacedByStranger(
                    f"pod {where} now has uid {pod_uid(pod)}, not the uid {current} this task follows, "
                    "and Podwarden did not announce it as a re-create"
                )
            )
        return Fail(None)

    _main_container = "base"


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc).isoformat(timespec="seconds")


def _status(error: BaseException) -> int | None:
    status = getattr(error, "status", None)
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _with_uid_precondition(body: Any, uid: str) -> Any:
    from kubernetes.client import V1DeleteOptions, V1Preconditions

    if body is None:
        body = V1DeleteOptions()
    if isinstance(body, dict):
        return {**body, "preconditions": {**(body.get("preconditions") or {}), "uid": uid}}
    body.preconditions = V1Preconditions(uid=uid)
    return body


def _patch_with_uid(body: Any, uid: str) -> Any:
    # The API server refuses a patch whose metadata.uid differs from the object's, so the uid in
    # the patch is a precondition (as kubectl's and client-go's patches use it).
    if isinstance(body, dict):
        metadata = dict(body.get("metadata") or {})
        metadata["uid"] = uid
        return {**body, "metadata": metadata}
    return body


class SyncPodFollower:
    """Installs itself on a ``kubernetes.client.CoreV1Api``: reads, deletes and patches of the
    followed pod go through it; everything else is untouched."""

    def __init__(
        self,
        state: FollowState,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        main_container: str = "base",
    ):
        self.state = state
        self.state._main_container = main_container
        self.clock = clock
        self.sleep = sleep
        self._originals: dict[str, Callable[..., Any]] = {}

    def install(self, client: Any) -> Any:
        if getattr(client, "_podwarden_follower", None) is self:
            return client
        for method in ("read_namespaced_pod", "delete_namespaced_pod", "patch_namespaced_pod", "create_namespaced_pod"):
            self._originals[method] = getattr(client, method)
        self._list_events = client.list_namespaced_event
        client.read_namespaced_pod = self.read_namespaced_pod
        client.delete_namespaced_pod = self.delete_namespaced_pod
        client.patch_namespaced_pod = self.patch_namespaced_pod
        client.create_namespaced_pod = self.create_namespaced_pod
        client._podwarden_follower = self
        return client

    def story(self, namespace: str, name: str) -> list[StoryEvent]:
        events = self._list_events(namespace=namespace, field_selector=f"involvedObject.name={name}")
        return podwarden_events(events.items or [])

    def create_namespaced_pod(self, namespace: str, body: Any, **kwargs: Any) -> Any:
        created = self._originals["create_namespaced_pod"](namespace, body, **kwargs)
        if pod_uid(created):
            self.state.namespace, self.state.name, self.state.uid = None, None, None
            self.state.adopt(created)
        return created

    def read_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> Any:
        read = self._originals["read_namespaced_pod"]
        if not self.state.follows(name, namespace):
            return read(name, namespace, **kwargs)
        while True:
            error: BaseException | None = None
            pod = None
            try:
                pod = read(name, namespace, **kwargs)
            except Exception as exc:
                if _status(exc) != 404:
                    raise
                error = exc
            if pod is not None and self.state.is_followed(pod):
                self.state.adopt(pod)
                return pod
            step = self.state.decide(pod, self.story(namespace, name), self.clock())
            if isinstance(step, Return):
                return step.pod
            if isinstance(step, Fail):
                if step.error is not None:
                    raise step.error from error
                assert error is not None
                raise error
            log.info("pod %s/%s: %s", namespace, name, step.why)
            self.sleep(self.state.settings.poll_seconds)

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> Any:
        delete = self._originals["delete_namespaced_pod"]
        uid = self.state.uid
        if uid is None or not self.state.follows(name, namespace):
            return delete(name, namespace, **kwargs)
        kwargs["body"] = _with_uid_precondition(kwargs.get("body"), uid)
        try:
            return delete(name, namespace, **kwargs)
        except Exception as exc:
            if _status(exc) != 409:
                raise
            log.warning(
                "not deleting pod %s/%s: it is no longer uid %s, the pod this task followed", namespace, name, uid
            )
            return None

    def patch_namespaced_pod(self, name: str, namespace: str, body: Any, **kwargs: Any) -> Any:
        patch = self._originals["patch_namespaced_pod"]
        uid = self.state.uid
        if uid is None or not self.state.follows(name, namespace):
            return patch(name, namespace, body, **kwargs)
        return patch(name, namespace, _patch_with_uid(body, uid), **kwargs)


class AsyncPodFollower:
    """The same decisions for the triggerer, over an ``AsyncKubernetesHook``'s calls."""

    def __init__(
        self,
        state: FollowState,
        *,
        clock: Callable[[], float] = time.time,
        main_container: str = "base",
    ):
        self.state = state
        self.state._main_container = main_container
        self.clock = clock

    async def read(self, read: Callable[[], Any], list_events: Callable[[], Any], name: str, namespace: str) -> Any:
        if not self.state.follows(name, namespace):
            return await read()
        while True:
            error: BaseException | None = None
            pod = None
            try:
                pod = await read()
            except Exception as exc:
                status = _status(exc) or _status(getattr(exc, "__cause__", None))
                if status != 404:
                    raise
                error = exc
            if pod is not None and self.state.is_followed(pod):
                self.state.adopt(pod)
                return pod
            events = await list_events()
            step = self.state.decide(pod, podwarden_events(events.items or []), self.clock())
            if isinstance(step, Return):
                return step.pod
            if isinstance(step, Fail):
                if step.error is not None:
                    raise step.error from error
                assert error is not None
                raise error
            log.info("pod %s/%s: %s", namespace, name, step.why)
            await asyncio.sleep(self.state.settings.poll_seconds)


__all__ = [
    "AsyncPodFollower",
    "FollowState",
    "NoWord",
    "PodReplacedByStranger",
    "PodwardenError",
    "PodwardenGaveUp",
    "PodwardenRecreateOverdue",
    "SyncPodFollower",
]
