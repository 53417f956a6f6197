"""The deferrable operator's trigger, following its pod by uid as the worker does.

The operator defers with this subclass of the provider's ``KubernetesPodTrigger`` (the triggerer
needs podwarden-airflow installed, as the workers do). Its hook's ``get_pod`` waits through a
Podwarden re-create instead of failing on 404; ``delete_pod`` carries the followed uid as a
precondition; an image-pull failure at start-up waits for Podwarden's verdict; every event it
fires names the uid it followed, so the worker resuming the task follows the same pod.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from functools import cached_property
from typing import Any

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook
from airflow.providers.cncf.kubernetes.kubernetes_helper_functions import PodLaunchFailedException
from airflow.providers.cncf.kubernetes.triggers.pod import KubernetesPodTrigger
from kubernetes.client import V1DeleteOptions, V1Preconditions

from podwarden_airflow.config import Settings, load_settings
from podwarden_airflow.follow import AsyncPodFollower, FollowState
from podwarden_airflow.operator import UID_EVENT_KEY
from podwarden_airflow.pull import Hold, PullWait, Raise, Retry, is_pull_failure
from podwarden_airflow.story import podwarden_events

log = logging.getLogger(__name__)


class PodwardenAsyncHook(AsyncKubernetesHook):
    def __init__(self, *args: Any, follower: AsyncPodFollower, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._podwarden_follower = follower

    async def get_pod(self, name: str, namespace: str) -> Any:
        return await self._podwarden_follower.read(
            lambda: super(PodwardenAsyncHook, self).get_pod(name, namespace),
            lambda: self.get_pod_events(name, namespace),
            name,
            namespace,
        )

    async def delete_pod(self, name: str, namespace: str, grace_period_seconds: int | None = None) -> None:
        uid = self._podwarden_follower.state.uid
        if uid is None:
            return await super().delete_pod(name, namespace, grace_period_seconds)
        from kubernetes_asyncio import client as async_client

        async with self.get_conn() as connection:
            try:
                await async_client.CoreV1Api(connection).delete_namespaced_pod(
                    name=name,
                    namespace=namespace,
                    body=V1DeleteOptions(
                        grace_period_seconds=grace_period_seconds, preconditions=V1Preconditions(uid=uid)
                    ),
                )
            except async_client.ApiException as e:
                # 404: already gone; 409: the name now holds another pod, not the one followed.
                if e.status not in (404, 409):
                    raise


class PodwardenPodTrigger(KubernetesPodTrigger):
    def __init__(self, *args: Any, podwarden_uid: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.podwarden_uid = podwarden_uid

    @classmethod
    def wrapping(cls, trigger: KubernetesPodTrigger, *, uid: str | None) -> PodwardenPodTrigger:
        _, kwargs = trigger.serialize()
        return cls(**kwargs, podwarden_uid=uid)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        uid = self._podwarden_state.uid if "_podwarden_state" in self.__dict__ else self.podwarden_uid
        return (f"{type(self).__module__}.{type(self).__qualname__}", {**kwargs, "podwarden_uid": uid})

    @cached_property
    def _podwarden_settings(self) -> Settings:
        return load_settings()

    @cached_property
    def _podwarden_state(self) -> FollowState:
        return FollowState(
            self._podwarden_settings, namespace=self.pod_namespace, name=self.pod_name, uid=self.podwarden_uid
        )

    @cached_property
    def hook(self) -> AsyncKubernetesHook:
        return PodwardenAsyncHook(
            conn_id=self.kubernetes_conn_id,
            in_cluster=self.in_cluster,
            config_dict=self.config_dict,
            cluster_context=self.cluster_context,
            connection_extras=self.connection_extras,
            follower=AsyncPodFollower(self._podwarden_state, main_container=self.base_container_name),
        )

    async def run(self) -> AsyncIterator[Any]:
        async for event in super().run():
            if isinstance(getattr(event, "payload", None), dict):
                event.payload[UID_EVENT_KEY] = self._podwarden_state.uid
            yield event

    async def _wait_for_pod_start(self) -> Any:
        while True:
            try:
                return await super()._wait_for_pod_start()
            except PodLaunchFailedException as error:
                if not is_pull_failure(error):
                    raise
                await self._hold_pull_failure(error)

    async def _hold_pull_failure(self, error: PodLaunchFailedException) -> None:
        wait = PullWait(self._podwarden_settings, time.time())
        while True:
            pod = await self._get_pod()
            events = await self.hook.get_pod_events(self.pod_name, self.pod_namespace)
            step = wait.step(pod, podwarden_events(events.items or []), time.time())
            if isinstance(step, Retry):
                return
            if isinstance(step, Raise):
                if step.error is None:
                    raise error
                raise PodLaunchFailedException(str(step.error)) from error
            assert isinstance(step, Hold)
            self.log.info("Image pull of pod %s: %s", self.pod_name, step.why)
            await asyncio.sleep(self._podwarden_settings.poll_seconds)
