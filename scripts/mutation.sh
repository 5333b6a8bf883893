#!/usr/bin/env bash
# Mutation score of the protocol core (docs/verification.md): dotnet-stryker over src/TwoPhase.Protocol with the
# protocol unit tests and the simulator's invariant range. Not in CI: it reruns the tests once per mutant (tens of
# minutes on two cores). Usage: bash scripts/mutation.sh [unit|all] [extra stryker options...]
#   unit  the protocol unit tests only (tests/TwoPhase.Tests, Protocol folder)
#   all   those and the simulator's invariant range of TWOPHASE_SIM_SEEDS seeds (default 300)
# MUTATION_EXCLUDE, a test filter, leaves tests out (e.g. FullyQualifiedName!~PhaseTwoRedriveTests to measure the
# score from before those tests, as docs/verification.md does).
# The report lands in src/TwoPhase.Protocol/StrykerOutput/<date>/reports/ (html and json).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-all}"
shift || true

tool="${STRYKER_TOOL_PATH:-/tmp/stryker-tool}"
if [[ ! -x "$tool/dotnet-stryker" ]]; then
    dotnet tool install dotnet-stryker --version 5.1.0 --tool-path "$tool"
fi

case "$mode" in
    unit) filter="FullyQualifiedName~TwoPhase.Tests.Protocol." ;;
    all) filter="FullyQualifiedName~TwoPhase.Tests.Protocol.|FullyQualifiedName~SimulationTests.CiSeedRange_" ;;
    *) echo "usage: $0 [unit|all] [stryker options...]" >&2; exit 2 ;;
esac

if [[ -n "${MUTATION_EXCLUDE:-}" ]]; then
    filter="($filter)&($MUTATION_EXCLUDE)"
fi

# Each mutant reruns the invariant range: a few hundred histories reach every path the 20,000 of CI do.
export TWOPHASE_SIM_SEEDS="${TWOPHASE_SIM_SEEDS:-300}"
cd "$root/src/TwoPhase.Protocol"
# One test process at a time: the machine has two cores and the simulator already uses both.
"$tool/dotnet-stryker" --config-file "$root/stryker-config.json" --concurrency 1 \
    --test-case-filter "$filter" "$@"
