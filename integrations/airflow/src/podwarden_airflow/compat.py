"""Which Airflow and provider versions the package knows. On any other it does nothing, and says
so once per process: its overrides reach into the provider's operator, trigger and pod manager,
whose internals change between versions."""

from __future__ import annotations

import logging
from functools import cache

log = logging.getLogger(__name__)

#: Oldest versions supported, and the first major versions not supported.
AIRFLOW_RANGE = ((3, 0, 0), (4, 0, 0))
PROVIDER_RANGE = ((10, 25, 0), (11, 0, 0))


def _version_tuple(text: str) -> tuple[int, ...]:
    """(3, 3, 2) from "3.3.2"; pre-release and local suffixes are cut ("3.4.0rc1" -> (3, 4, 0))."""
    parts: list[int] = []
    for piece in text.split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def in_range(version: str, bounds: tuple[tuple[int, int, int], tuple[int, int, int]]) -> bool:
    parsed = _version_tuple(version)
    if len(parsed) < 2:
        return False
    parsed = parsed + (0,) * (3 - len(parsed))
    return bounds[0] <= parsed < bounds[1]


@cache
def supported() -> bool:
    """True when both versions are known; otherwise one warning, and False."""
    try:
        import airflow
        from airflow.providers.cncf import kubernetes as provider
    except ImportError:
        return False
    airflow_version = getattr(airflow, "__version__", "?")
    provider_version = getattr(provider, "__version__", "?")
    if in_range(airflow_version, AIRFLOW_RANGE) and in_range(provider_version, PROVIDER_RANGE):
        return True
    log.warning(
        "podwarden-airflow does nothing: it supports Airflow >=%s,<%s with "
        "apache-airflow-providers-cncf-kubernetes >=%s,<%s, found Airflow %s and provider %s",
        ".".join(map(str, AIRFLOW_RANGE[0])),
        ".".join(map(str, AIRFLOW_RANGE[1])),
        ".".join(map(str, PROVIDER_RANGE[0])),
        ".".join(map(str, PROVIDER_RANGE[1])),
        airflow_version,
        provider_version,
    )
    return False
