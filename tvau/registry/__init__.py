"""Gates, MLflow tracking and the model registry.

- `policy` / `gates`: registry/policy.yaml and the pure gate check (evaluate.json + policy +
  champion metrics -> report).
- `tracking`: one parent MLflow run per pipeline run, a child run per stage, DVC datasets as inputs.
- `pyfunc`: the trained-model directory as an MLflow pyfunc model (servable with `mlflow models serve`).
- `models`: registration, aliases `challenger`/`champion`, promotion history, rollback.
- `resolve.download_model`: a `models:/` or `runs:/` URI -> local trained-model directory.

MLflow is imported inside the functions: `import tvau.registry` stays cheap.
"""
