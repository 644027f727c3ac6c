#!/bin/sh
# Runs once, on the first start of the postgres container (docker-entrypoint-initdb.d): one role
# and one database each for MLflow and Prefect, passwords read from the compose secrets.
set -eu
for role in mlflow prefect; do
    pw=$(cat "/run/secrets/${role}_db_password")
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
         -v role="$role" -v pw="$pw" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
CREATE DATABASE :"role" OWNER :"role";
SQL
done
