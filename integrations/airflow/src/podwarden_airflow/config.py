"""The package's settings: section ``[podwarden]`` of Airflow's configuration.

Every key can also be set as ``AIRFLOW__PODWARDEN__<KEY>``, as for any Airflow section. Values are
read and checked when first needed; a bad value raises :class:`SettingsError` naming the key, so a
typo never silently turns a behaviour off.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

SECTION = "podwarden"


class SettingsError(ValueError):
    """A ``[podwarden]`` value that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Settings:
    #: The one switch: False leaves every operator and listener exactly as the provider made them.
    enabled: bool = True
    #: How long to wait for Podwarden's first word (a RecreatePending after a 404, a verdict on an
    #: image-pull error) before behaving as the provider does without Podwarden.
    grace_seconds: float = 15.0
    #: Added to a RecreatePending's announced due time before giving up on the re-create.
    recreate_margin_seconds: float = 30.0
    #: Main container terminated, pod still Running (a sidecar that never exits) for this long:
    #: the task ends by the main container's exit code.
    sidecar_grace_seconds: float = 300.0
    #: How often Podwarden's Events and the pod are re-read while waiting.
    poll_seconds: float = 1.0
    #: Listener: the EventBridge bus that receives ``Task Instance Changed``; empty = send nothing.
    event_bus_name: str = ""
    #: Listener: the cluster name Podwarden knows the KPO cluster by (its PODWARDEN_CLUSTERS key).
    cluster_name: str = ""
    region: str = ""
    #: Listener: an EventBridge endpoint URL (e.g. a VPC endpoint); empty = the region's default.
    events_endpoint_url: str = ""
    source: str = "airflow.listener"
    #: Listener: namespace to report when neither the task object (absent where the API server
    #: sets a state by hand) nor the task's rendered fields in the metadata database name one.
    default_namespace: str = "default"
    #: Listener: operator class names treated as pod operators when only the task instance's
    #: recorded operator name is known (the API server does not load DAGs).
    operator_names: tuple[str, ...] = ("KubernetesPodOperator",)
    queue_size: int = 1000
    send_timeout_seconds: float = 5.0
    #: Listener: at process exit, wait at most this long for queued sends.
    flush_timeout_seconds: float = 3.0

    @property
    def listener_configured(self) -> bool:
        return self.enabled and bool(self.event_bus_name) and bool(self.cluster_name)


def _boolean(key: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "t", "1", "yes", "on"):
        return True
    if value in ("false", "f", "0", "no", "off"):
        return False
    raise SettingsError(f"[{SECTION}] {key} = {raw!r} is not a boolean (True or False)")


def _seconds(key: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"[{SECTION}] {key} = {raw!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise SettingsError(f"[{SECTION}] {key} = {raw!r} must be a finite number of seconds >= 0")
    return value


def _positive_int(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"[{SECTION}] {key} = {raw!r} is not a whole number") from None
    if value < 1:
        raise SettingsError(f"[{SECTION}] {key} = {raw!r} must be >= 1")
    return value


def _text(key: str, raw: str) -> str:
    return raw.strip()


def _url(key: str, raw: str) -> str:
    value = raw.strip()
    if value and urlparse(value).scheme not in ("http", "https"):
        raise SettingsError(f"[{SECTION}] {key} = {raw!r} is not an http(s) URL")
    return value


def _names(key: str, raw: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in raw.split(",") if name.strip())
    if not names:
        raise SettingsError(f"[{SECTION}] {key} must name at least one operator class")
    return names


_PARSERS: dict[str, Callable[[str, str], Any]] = {
    "enabled": _boolean,
    "grace_seconds": _seconds,
    "recreate_margin_seconds": _seconds,
    "sidecar_grace_seconds": _seconds,
    "poll_seconds": _seconds,
    "event_bus_name": _text,
    "cluster_name": _text,
    "region": _text,
    "events_endpoint_url": _url,
    "source": _text,
    "default_namespace": _text,
    "operator_names": _names,
    "queue_size": _positive_int,
    "send_timeout_seconds": _seconds,
    "flush_timeout_seconds": _seconds,
}


def parse_settings(values: dict[str, str]) -> Settings:
    """Settings from raw strings (as configuration files hold them); unknown keys are refused."""
    unknown = sorted(set(values) - set(_PARSERS))
    if unknown:
        raise SettingsError(
            f"[{SECTION}] has unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_PARSERS))}"
        )
    parsed = {key: _PARSERS[key](key, raw) for key, raw in values.items()}
    if parsed.get("poll_seconds", 1.0) == 0:
        raise SettingsError(f"[{SECTION}] poll_seconds must be > 0")
    return Settings(**parsed)


def load_settings() -> Settings:
    """The ``[podwarden]`` section as Airflow's configuration has it (files and environment)."""
    from airflow.configuration import conf

    values = {key: str(conf.get(SECTION, key)) for key in _PARSERS if conf.has_option(SECTION, key)}
    # Keys nobody reads are refused too (a typo must not silently leave a default in force):
    # the files' keys, and the AIRFLOW__PODWARDEN__* variables.
    prefix = f"AIRFLOW__{SECTION.upper()}__"
    present = {key.lower() for key in (conf.getsection(SECTION) or {})}
    present |= {
        name[len(prefix) :].lower().removesuffix("_cmd").removesuffix("_secret")
        for name in os.environ
        if name.startswith(prefix)
    }
    for key in present - set(_PARSERS):
        values[key] = ""
    return parse_settings(values)
