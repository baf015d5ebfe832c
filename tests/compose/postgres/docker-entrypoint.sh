#!/usr/bin/env bash
# The official postgres image's start-up contract, reduced to what a compose file relies on: on
# the first start (an empty PGDATA), initdb with POSTGRES_USER (default postgres) and
# POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust), connections from any
# address with POSTGRES_HOST_AUTH_METHOD (default scram-sha-256), and the database POSTGRES_DB
# (default: the user's name); then the server runs as user postgres, as PID 1.
set -Eeuo pipefail

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ "${1:-}" = postgres ] && [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  # setpriv execs (runuser would stay as the parent and not pass SIGINT on to the server).
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  user="${POSTGRES_USER:-postgres}"
  database="${POSTGRES_DB:-$user}"
  host_auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$host_auth" != trust ]; then
    echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" \
      "(or set POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  initdb --username="$user" --pwfile=<(printf '%s\n' "${POSTGRES_PASSWORD:-}") \
    --auth-local=trust --auth-host="$host_auth" --encoding=UTF8 >/dev/null
  printf '\nhost all all all %s\n' "$host_auth" >> "$PGDATA/pg_hba.conf"
  printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$database" != postgres ]; then
    psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres \
      --command="CREATE DATABASE \"$database\"" >/dev/null
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
