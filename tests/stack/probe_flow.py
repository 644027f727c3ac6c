"""A trivial flow for the stack's integration test: it runs in a flow-run process started by the
stack's worker and writes one MLflow run (a parameter and a text artifact) through the stack's
MLflow server, so the test sees the worker hand its clients the stack's endpoints."""

from __future__ import annotations

from prefect import flow


@flow(name="stack-probe")
def stack_probe(marker: str) -> str:
    import mlflow

    mlflow.set_experiment("stack-probe")
    with mlflow.start_run(run_name="probe") as run:
        mlflow.log_param("marker", marker)
        mlflow.log_text(f"written by a flow run of the stack's worker: {marker}\n", "probe/marker.txt")
    return run.info.run_id
