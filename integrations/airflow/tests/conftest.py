"""Shared set-up: a throwaway AIRFLOW_HOME (sqlite) before anything imports Airflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

_home = Path(tempfile.mkdtemp(prefix="podwarden-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_home))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).parent / "cluster" / "dags"))
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """The metadata database (sqlite in the throwaway AIRFLOW_HOME), migrated once per session."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


_REPORT = os.environ.get("PODWARDEN_PYTEST_REPORT")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With PODWARDEN_PYTEST_REPORT set, one JSON line per test outcome (npm test reads them:
    test/airflow/provider.test.ts); the worst of a test's phases is its outcome."""
    if not _REPORT:
        return
    if report.when != "call" and report.passed:
        return
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        outcome, text = "skipped", reason
    elif report.failed:
        outcome, text = ("failed" if report.when == "call" else f"error in {report.when}"), report.longreprtext
    else:
        outcome, text = "passed", ""
    with open(_REPORT, "a", encoding="utf-8") as out:
        out.write(json.dumps({"id": report.nodeid, "outcome": outcome, "text": text[-6000:], "seconds": report.duration}) + "\n")
