#!/bin/sh
# Generate the secrets of infra/docker-compose.yml into infra/secrets/ (gitignored), each file
# readable only by you. Existing files are kept, so running it twice changes nothing.
set -eu
dir="$(dirname "$0")/secrets"
umask 077
mkdir -p "$dir"
rand() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
for name in postgres_password mlflow_db_password prefect_db_password; do
    [ -f "$dir/$name" ] || rand > "$dir/$name"
done
if [ ! -f "$dir/aws_credentials" ]; then
    ak="TVAU$(python3 -c 'import secrets; print(secrets.token_hex(8).upper())')"
    printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$ak" "$(rand)" > "$dir/aws_credentials"
fi
ls -l "$dir"
