"""podwarden-airflow: Airflow's KubernetesPodOperator follows its pod through Podwarden's decisions.

Installed, it registers itself (entry points ``airflow.policy`` and ``airflow.plugins``); no DAG
changes. ``[podwarden] enabled = False`` turns everything off.
"""

__version__ = "0.1.0"
