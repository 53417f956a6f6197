"""The [podwarden] section: typed, checked, and a typo never silently leaves a default."""

from __future__ import annotations

import pytest

from podwarden_airflow.config import Settings, SettingsError, load_settings, parse_settings


def test_defaults():
    settings = parse_settings({})
    assert settings == Settings()
    assert settings.enabled and not settings.listener_configured


def test_values_are_parsed_by_type():
    settings = parse_settings(
        {"enabled": "off", "grace_seconds": "2.5", "queue_size": "7", "operator_names": "KubernetesPodOperator, GKEStartPodOperator"}
    )
    assert settings.enabled is False
    assert settings.grace_seconds == 2.5
    assert settings.queue_size == 7
    assert settings.operator_names == ("KubernetesPodOperator", "GKEStartPodOperator")


@pytest.mark.parametrize(
    ("key", "raw", "says"),
    [
        ("enabled", "maybe", "is not a boolean"),
        ("grace_seconds", "soon", "is not a number of seconds"),
        ("grace_seconds", "-1", "must be a finite number of seconds >= 0"),
        ("recreate_margin_seconds", "inf", "must be a finite number of seconds >= 0"),
        ("queue_size", "0", "must be >= 1"),
        ("events_endpoint_url", "localhost:4010", "is not an http(s) URL"),
        ("operator_names", " , ", "must name at least one operator class"),
        ("poll_seconds", "0", "poll_seconds must be > 0"),
    ],
)
def test_bad_values_name_the_key(key, raw, says):
    with pytest.raises(SettingsError) as caught:
        parse_settings({key: raw})
    assert f"[podwarden] {key}" in str(caught.value) and says in str(caught.value)


def test_unknown_keys_are_refused_with_the_known_ones_listed():
    with pytest.raises(SettingsError, match="unknown keys grace_second;.*grace_seconds"):
        parse_settings({"grace_second": "3"})


def test_airflow_configuration_and_environment_are_read(monkeypatch):
    monkeypatch.setenv("AIRFLOW__PODWARDEN__GRACE_SECONDS", "4")
    monkeypatch.setenv("AIRFLOW__PODWARDEN__ENABLED", "False")
    settings = load_settings()
    assert settings.grace_seconds == 4 and settings.enabled is False


def test_a_misspelt_environment_variable_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW__PODWARDEN__ENABLD", "False")
    with pytest.raises(SettingsError, match="unknown keys enabld"):
        load_settings()
