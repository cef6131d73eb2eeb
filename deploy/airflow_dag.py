"""Example Airflow DAG: the social-listening job on Dataflow every day, one window per data interval.

Copy this file into your Airflow `dags/` folder (it needs `apache-airflow-providers-google`;
it is not part of this project's package or tests' imports) and set the Airflow Variables
`sl_project`, `sl_region`, `sl_bucket`. The template is built by `deploy/launch.sh build`.

Each DAG run processes exactly its data interval, [data_interval_start, data_interval_end)
in UTC days, with `--window_start` / `--window_end`:

- a daily run at 02:00 UTC processes yesterday; rerunning it (Clear in the UI) rewrites
  the same `created_date=` partitions and recomputes the metrics of the periods it touches,
  from the mentions, so it never double-counts;
- `catchup=True` with a `start_date` in the past is a backfill: one run per missed day,
  oldest first (`max_active_runs=1`: runs on one output directory must not overlap);
- late posts (a platform export that arrives after the run) are picked up by clearing
  the affected days, or by a wider backfill window from the CLI (`launch.sh backfill`).

The alternative to scheduler-given windows is `incremental=true` (the job reads the end of
its last successful window from `<output_dir>/_state/runs.json`); it suits cron-like
schedulers without data intervals. Do not mix both on one output directory.
"""

from __future__ import annotations

import datetime

from airflow import DAG
from airflow.models import Variable
from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator

PROJECT = Variable.get("sl_project", default_var="my-project")
REGION = Variable.get("sl_region", default_var="europe-west1")
BUCKET = Variable.get("sl_bucket", default_var="my-bucket")
# The workers' image built by launch.sh build: the project and the embedded model's cache preinstalled.
WORKER_IMAGE = Variable.get(
    "sl_worker_image", default_var=f"{REGION}-docker.pkg.dev/{PROJECT}/dataflow/social-listening-worker:latest")

with DAG(
    dag_id="social_listening_daily",
    schedule="0 2 * * *",  # 02:00 UTC: yesterday's posts have arrived
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=True,  # missed days (or a start_date in the past) run one by one: a backfill
    max_active_runs=1,  # one run at a time per output directory: commits and the run log are not concurrent
    default_args={"retries": 2, "retry_delay": datetime.timedelta(minutes=15)},
    tags=["social-listening", "dataflow"],
) as dag:
    DataflowStartFlexTemplateOperator(
        task_id="social_listening",
        project_id=PROJECT,
        location=REGION,
        wait_until_finished=True,
        body={
            "launchParameter": {
                "jobName": "social-listening-{{ ds_nodash }}",
                "containerSpecGcsPath": f"gs://{BUCKET}/templates/social-listening.json",
                "parameters": {
                    "config": f"gs://{BUCKET}/brands.yaml",
                    # Only the files that can hold the window's posts, e.g. one export per day.
                    "input": f"gs://{BUCKET}/mentions/{{{{ data_interval_start | ds }}}}*.jsonl",
                    "output_dir": f"gs://{BUCKET}/listening",
                    "window_start": "{{ data_interval_start | ds }}",
                    "window_end": "{{ data_interval_end | ds }}",
                    "sdk_container_image": WORKER_IMAGE,
                },
                "environment": {
                    "tempLocation": f"gs://{BUCKET}/tmp",
                    "machineType": "n2-standard-4",
                    "maxWorkers": 10,
                    "additionalExperiments": ["use_runner_v2"],
                },
            }
        },
    )
