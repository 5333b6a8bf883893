#!/usr/bin/env bash
# Stop the throwaway cluster started by scripts/pg-start.sh and remove its folder.
# Usage: scripts/pg-stop.sh [PORT]   (default 5433)
set -euo pipefail

PORT="${1:-5433}"
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
STATE_FILE="${TMPDIR:-/tmp}/twophase-pg-${PORT}.dir"

if [[ ! -f "$STATE_FILE" ]]; then
    echo "pg-stop: no cluster started by pg-start.sh on port $PORT." >&2
    exit 0
fi

DIR="$(cat "$STATE_FILE")"
if [[ -d "$DIR/data" ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
    else
        "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true
    fi
fi

# Only ever remove the folder pg-start.sh made.
case "$DIR" in
    "${TMPDIR:-/tmp}"/twophase-pg-"${PORT}".*) rm -rf "$DIR" ;;
    *) echo "pg-stop: refusing to remove unexpected folder '$DIR'." >&2 ;;
esac
rm -f "$STATE_FILE"
