#!/usr/bin/env bash
# Run every test project on real databases: starts a throwaway PostgreSQL 15 (scripts/pg-start.sh) unless
# TWOPHASE_TEST_POSTGRES already names a server, runs `dotnet test TwoPhase.slnx` with any extra
# arguments, and stops PostgreSQL again. Usage: bash scripts/test.sh [dotnet test options]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_PORT="${TWOPHASE_TEST_PG_PORT:-5433}"

main() {
    if [[ -z "${TWOPHASE_TEST_POSTGRES:-}" ]]; then
        trap '"$ROOT/scripts/pg-stop.sh" "$PG_PORT" >/dev/null 2>&1 || true' EXIT
        TWOPHASE_TEST_POSTGRES="$("$ROOT/scripts/pg-start.sh" "$PG_PORT" | tail -n 1)"
        export TWOPHASE_TEST_POSTGRES
    fi

    echo "test: PostgreSQL at $TWOPHASE_TEST_POSTGRES" >&2
    dotnet test TwoPhase.slnx "$@"
}

main "$@"
