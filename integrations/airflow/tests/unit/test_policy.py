"""The policy path: a DAG parsed by Airflow's own DagBag gets its pod operators adapted through the
``airflow.policy`` entry point, with no change to the DAG."""

from __future__ import annotations

import textwrap

import pytest

from podwarden_airflow.operator import MARK, PodwardenOperatorMixin

DAG_FILE = textwrap.dedent(
    """
    import datetime
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    class TeamPodOperator(KubernetesPodOperator):
        pass

    with DAG("policy_probe", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
        KubernetesPodOperator(task_id="plain", name="plain", image="x")
        TeamPodOperator(task_id="subclass", name="subclass", image="x")
        KubernetesPodOperator.partial(task_id="mapped", name="mapped").expand(image=["x", "y"])
        EmptyOperator(task_id="other")
    """
)


def _parse(tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "policy_probe.py").write_text(DAG_FILE)
    bag = DagBag(dag_folder=str(tmp_path))
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag("policy_probe")


def test_every_pod_operator_and_subclass_is_adapted_and_keeps_its_name(tmp_path, airflow_db):
    dag = _parse(tmp_path)
    plain, subclass, other = dag.get_task("plain"), dag.get_task("subclass"), dag.get_task("other")
    assert isinstance(plain, PodwardenOperatorMixin) and getattr(type(plain), MARK)
    assert isinstance(subclass, PodwardenOperatorMixin)
    assert type(plain).__name__ == "KubernetesPodOperator"  # the UI and serialization see the same name
    assert type(subclass).__name__ == "TeamPodOperator"
    assert not isinstance(other, PodwardenOperatorMixin)
    mapped = dag.get_task("mapped")
    assert issubclass(mapped.operator_class, PodwardenOperatorMixin)


def test_the_switch_leaves_operators_as_the_provider_made_them(tmp_path, monkeypatch, airflow_db):
    monkeypatch.setenv("AIRFLOW__PODWARDEN__ENABLED", "False")
    dag = _parse(tmp_path)
    assert not isinstance(dag.get_task("plain"), PodwardenOperatorMixin)


def test_adapting_twice_changes_nothing():
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    from podwarden_airflow.operator import adapt

    task = KubernetesPodOperator(task_id="t", name="t", image="x")
    assert adapt(task) and adapt(task)
    assert type(task).__mro__.count(PodwardenOperatorMixin) == 1


@pytest.mark.parametrize("group", ["airflow.policy", "airflow.plugins"])
def test_the_package_registers_through_airflows_entry_points(group):
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group=group)}
    assert "podwarden" in names
