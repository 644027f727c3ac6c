"""`tvau stack`: PostgreSQL, an S3 server, the MLflow and Prefect servers and a Prefect worker on
loopback, started and stopped as one (see tvau/stack/stack.py and infra/README.md)."""
