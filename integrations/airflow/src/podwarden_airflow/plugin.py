"""Airflow plugin (entry point ``airflow.plugins``) that registers the listener."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from podwarden_airflow import listener


class PodwardenPlugin(AirflowPlugin):
    name = "podwarden"
    listeners = [listener]
