"""Versions the package knows, and what it does on others: nothing, with one warning."""

from __future__ import annotations

import logging

import pytest

from podwarden_airflow import compat


@pytest.mark.parametrize(
    ("version", "known"),
    [("3.0.0", True), ("3.3.2", True), ("3.4.0rc1", True), ("2.10.5", False), ("4.0.0", False), ("x", False)],
)
def test_airflow_range(version, known):
    assert compat.in_range(version, compat.AIRFLOW_RANGE) is known


@pytest.mark.parametrize(("version", "known"), [("10.25.0", True), ("10.24.9", False), ("11.0.0", False)])
def test_provider_range(version, known):
    assert compat.in_range(version, compat.PROVIDER_RANGE) is known


def test_the_installed_versions_are_supported():
    compat.supported.cache_clear()
    assert compat.supported() is True


def test_an_unknown_provider_version_turns_the_package_off_with_one_warning(monkeypatch, caplog):
    from airflow.providers.cncf import kubernetes as provider

    monkeypatch.setattr(provider, "__version__", "11.0.0")
    compat.supported.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger=compat.__name__):
            assert compat.supported() is False
            assert compat.supported() is False
        warnings = [r for r in caplog.records if "does nothing" in r.getMessage()]
        assert len(warnings) == 1 and "11.0.0" in warnings[0].getMessage()
    finally:
        compat.supported.cache_clear()
