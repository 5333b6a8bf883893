#!/usr/bin/env bash
# Start a throwaway PostgreSQL 15 cluster for tests: trust auth on 127.0.0.1, durable commits
# (fsync and synchronous_commit on, as in production), enough connections for concurrency tests.
# Usage: scripts/pg-start.sh [PORT]   (default 5433)
# Prints the connection string on the last line of stdout. Stop it with scripts/pg-stop.sh [PORT].
set -euo pipefail

PORT="${1:-5433}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
STATE_FILE="${TMPDIR:-/tmp}/twophase-pg-${PORT}.dir"

if [[ ! -x "$PG_BIN/initdb" ]]; then
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "pg-start: $PG_BIN/initdb is missing; install the 'postgresql' package (as root)." >&2
        exit 1
    fi
    echo "pg-start: installing postgresql (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
fi

if [[ -f "$STATE_FILE" ]]; then
    echo "pg-start: a cluster on port $PORT seems to be running already ($STATE_FILE); run scripts/pg-stop.sh $PORT first." >&2
    exit 1
fi

# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
as_pg() {
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

DIR="$(mktemp -d "${TMPDIR:-/tmp}/twophase-pg-${PORT}.XXXXXX")"
chmod 755 "$DIR"
if [[ "$(id -u)" -eq 0 ]]; then
    chown postgres: "$DIR"
fi
echo "$DIR" > "$STATE_FILE"

as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }

as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start -o "\
 -c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR\
 -c fsync=on -c synchronous_commit=on -c max_connections=300 -c shared_buffers=128MB" >&2 \
    || { cat "$DIR/server.log" >&2; exit 1; }

for _ in $(seq 1 120); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
        echo "Host=127.0.0.1;Port=$PORT;Username=postgres"
        exit 0
    fi
    sleep 0.5
done

echo "pg-start: PostgreSQL did not become ready on port $PORT; log:" >&2
cat "$DIR/server.log" >&2
exit 1
