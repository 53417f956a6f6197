"""What the cluster policy does to a KubernetesPodOperator: its class becomes a subclass that puts
:class:`PodwardenOperatorMixin` first in the method order. The subclass keeps the original's name
and module, so serialization, the UI and operator links see the same operator; a swap (rather than
instance attributes) survives the copies Airflow makes of a task before it runs it.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property
from typing import Any

from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import PodLaunchFailedException
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger
from airflow.providers.cncf.kubernetes.utils.container import container_is_completed
from airflow.providers.cncf.kubernetes.utils.pod_manager import (
    PodManager,
    PodPhase,
    detect_pod_terminate_early_issues,
)

from podwarden_airflow.config import Settings, load_settings
from podwarden_airflow.follow import FollowState, SyncPodFollower
from podwarden_airflow.pods import finished_at, settled_by_main_container, terminated_state
from podwarden_airflow.pull import Hold, PullWait, Raise, Retry, is_pull_failure

log = logging.getLogger(__name__)

#: Set on every class the policy made, so applying it twice is a no-op.
MARK = "_podwarden_adapted"
UID_EVENT_KEY = "podwarden_uid"


class PodwardenPodManager(PodManager):
    """Ends the wait for a pod whose main container terminated while a sidecar keeps it Running,
    once that has lasted ``sidecar_grace_seconds``: the outcome is the main container's."""

    def __init__(self, *args: Any, settings: Settings, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._podwarden_settings = settings

    def await_pod_completion(
        self,
        pod: Any,
        istio_enabled: bool = False,
        container_name: str = "base",
        do_xcom_push: bool = False,
    ) -> Any:
        # The provider's loop (utils/pod_manager.py), plus the sidecar rule.
        grace = self._podwarden_settings.sidecar_grace_seconds
        first_seen_done: float | None = None
        while True:
            remote_pod = self.read_pod(pod)
            if remote_pod.status.phase in PodPhase.terminal_states:
                return remote_pod
            if (istio_enabled or do_xcom_push) and container_is_completed(remote_pod, container_name):
                return remote_pod
            if detect_pod_terminate_early_issues(remote_pod):
                return remote_pod
            terminated = terminated_state(remote_pod, container_name)
            if terminated is not None:
                now = time.time()
                first_seen_done = first_seen_done or now
                since = finished_at(terminated) or first_seen_done
                if now - since >= grace:
                    self.log.warning(
                        "Container '%s' of pod %s exited %s %.0f s ago but the pod is still %s (a sidecar "
                        "that does not exit): ending the task by the main container's exit code.",
                        container_name,
                        pod.metadata.name,
                        getattr(terminated, "exit_code", "?"),
                        now - since,
                        remote_pod.status.phase,
                    )
                    return settled_by_main_container(remote_pod, container_name)
            self.log.info("Pod %s has phase %s", pod.metadata.name, remote_pod.status.phase)
            time.sleep(min(2.0, self._podwarden_settings.poll_seconds * 2))


class PodwardenOperatorMixin:
    """Overrides of KubernetesPodOperator methods; each calls the provider's own code."""

    @cached_property
    def _podwarden_settings(self) -> Settings:
        return load_settings()

    @property
    def _podwarden_follower(self) -> SyncPodFollower:
        follower = self.__dict__.get("_podwarden_follower_instance")
        if follower is None:
            follower = SyncPodFollower(
                FollowState(self._podwarden_settings), main_container=self.base_container_name
            )
            # Straight into __dict__: BaseOperator.__setattr__ has side effects for init kwargs.
            self.__dict__["_podwarden_follower_instance"] = follower
        return follower

    @cached_property
    def client(self) -> Any:
        client = super().client  # type: ignore[misc]
        return self._podwarden_follower.install(client)

    @cached_property
    def pod_manager(self) -> PodManager:
        return PodwardenPodManager(
            kube_client=self.client, callbacks=self.callbacks, settings=self._podwarden_settings
        )

    def await_pod_start(self, pod: Any) -> None:
        while True:
            try:
                return super().await_pod_start(pod)  # type: ignore[misc]
            except PodLaunchFailedException as error:
                if not is_pull_failure(error):
                    raise
                self._podwarden_hold_pull_failure(pod, error)

    def _podwarden_hold_pull_failure(self, pod: Any, error: PodLaunchFailedException) -> None:
        """Returns when the provider's wait should run again; raises when the task must fail."""
        follower = self._podwarden_follower
        wait = PullWait(self._podwarden_settings, time.time())
        while True:
            remote = self.pod_manager.read_pod(pod)
            story = follower.story(remote.metadata.namespace, remote.metadata.name)
            step = wait.step(remote, story, time.time())
            if isinstance(step, Retry):
                return
            if isinstance(step, Raise):
                if step.error is None:
                    raise error
                raise PodLaunchFailedException(str(step.error)) from error
            assert isinstance(step, Hold)
            self.log.info("Image pull of pod %s: %s", remote.metadata.name, step.why)
            time.sleep(self._podwarden_settings.poll_seconds)

    def defer(self, *, trigger: Any, method_name: str, kwargs: Any = None, timeout: Any = None) -> Any:
        from podwarden_airflow.trigger import PodwardenPodTrigger

        if isinstance(trigger, KubernetesPodTrigger) and not isinstance(trigger, PodwardenPodTrigger):
            trigger = PodwardenPodTrigger.wrapping(trigger, uid=self._podwarden_follower.state.uid)
        return super().defer(trigger=trigger, method_name=method_name, kwargs=kwargs, timeout=timeout)  # type: ignore[misc]

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        # A worker resuming from deferral is a fresh operator: follow the uid the trigger followed.
        uid = event.get(UID_EVENT_KEY)
        state = self._podwarden_follower.state
        if uid and state.uid is None:
            state.uid, state.name, state.namespace = uid, event.get("name"), event.get("namespace")
        return super().trigger_reentry(context, event)  # type: ignore[misc]


_SUBCLASSES: dict[type, type] = {}


def adapted_class(cls: type) -> type:
    """The class the policy gives an operator of class ``cls`` (a KubernetesPodOperator subclass)."""
    if getattr(cls, MARK, False):
        return cls
    sub = _SUBCLASSES.get(cls)
    if sub is None:
        sub = type(
            cls.__name__,
            (PodwardenOperatorMixin, cls),
            {"__module__": cls.__module__, "__qualname__": cls.__qualname__, MARK: True},
        )
        _SUBCLASSES[cls] = sub
    return sub


def is_pod_operator_class(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, KubernetesPodOperator)


def adapt(task: Any) -> bool:
    """Adapts one task (an operator or a mapped operator) in place; True when it is a pod operator."""
    if isinstance(task, KubernetesPodOperator):
        task.__class__ = adapted_class(type(task))
        return True
    operator_class = getattr(task, "operator_class", None)
    if is_pod_operator_class(operator_class):
        # A mapped task: the operators it expands into are built from this class.
        object.__setattr__(task, "operator_class", adapted_class(operator_class))
        return True
    return False

