"""The ground for the scenario tests: test/airflow/ground.ts (control plane, DynamoDB Local,
Podwarden's local loop, a PutEvents receiver), started once per session, and an Airflow metadata
database (sqlite) migrated for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[4]
GROUND_START_SECONDS = 240


def _node() -> str:
    node = REPO / "node_modules" / ".bin" / "node"
    if not node.exists():
        raise RuntimeError(f"{node} is missing: run `npm ci` in {REPO}")
    return str(node)


@pytest.fixture(scope="session")
def ground(airflow_db: None) -> Iterator[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="podwarden-ground-"))
    state_path = workdir / "state.json"
    log_path = workdir / "ground.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [_node(), "test/airflow/ground.ts", str(state_path)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + GROUND_START_SECONDS
        while not state_path.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the ground exited ({process.returncode}); see {log_path}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ground was not ready within {GROUND_START_SECONDS} s; see {log_path}")
            time.sleep(0.2)
        time.sleep(0.1)  # the file is written in one call; let it close
        state = json.loads(state_path.read_text())
        state["log"] = str(log_path)
        os.environ["PODWARDEN_GROUND_STATE"] = str(state_path)
        os.environ.update(
            {
                "AIRFLOW__PODWARDEN__EVENT_BUS_NAME": "podwarden-test",
                "AIRFLOW__PODWARDEN__CLUSTER_NAME": state["cluster"],
                "AIRFLOW__PODWARDEN__REGION": "us-east-1",
                "AIRFLOW__PODWARDEN__EVENTS_ENDPOINT_URL": state["eventsEndpoint"],
                "AIRFLOW__PODWARDEN__SIDECAR_GRACE_SECONDS": "2",
                "AIRFLOW__PODWARDEN__GRACE_SECONDS": "15",
                # The receiver is local; botocore still signs, so it needs some credentials.
                "AWS_ACCESS_KEY_ID": "podwardenlocal",
                "AWS_SECRET_ACCESS_KEY": "podwardenlocal",
            }
        )
        yield state
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        if process.stdin:
            process.stdin.close()
