#!/usr/bin/env bash
# Packs the library packages (docs/packages.md) into the local folder feed artifacts/packages: one .nupkg and one
# .snupkg per project whose csproj says <IsPackable>true</IsPackable>, in Release, with warnings as errors, so a
# warning fails the pack. scripts/test.sh runs this first and exports TWOPHASE_PACKAGE_FEED for the tests that
# restore from the feed (tests/TwoPhase.Packaging.Tests, the samples' test).
#
# Usage: bash scripts/pack.sh               pack into artifacts/packages (emptied first)
#        bash scripts/pack.sh --update-api  rewrite each package's PublicAPI.Unshipped.txt from its code instead
#                                           (the RS0016 code fix of Microsoft.CodeAnalysis.PublicApiAnalyzers), then
#                                           review the diff: every added line is a promise from the next release on
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
FEED="$ROOT/artifacts/packages"

# Every packable project, found by its own declaration, so a new package (the contract kit, the CLI as a tool)
# is packed without editing this list.
mapfile -t PROJECTS < <(grep -l --include='*.csproj' -r -E '<IsPackable>true</IsPackable>' src tests | sort)
if (( ${#PROJECTS[@]} == 0 )); then
    echo "pack: no project says <IsPackable>true</IsPackable>" >&2
    exit 1
fi

if [[ "${1:-}" == "--update-api" ]]; then
    # TWOPHASE_UPDATE_API turns the API checks on even in projects still marked <TwoPhaseApiDraft> (Directory.Build.targets),
    # so the code fix sees every public symbol that PublicAPI.*.txt does not list yet. RS0017 (listed but gone) has
    # no code fix here: delete those lines by hand when the build names them.
    for project in "${PROJECTS[@]}"; do
        echo "pack: updating $(dirname "$project")/PublicAPI.Unshipped.txt" >&2
        TWOPHASE_UPDATE_API=true dotnet format analyzers "$project" --diagnostics RS0016 --severity warn >&2
    done
    exit 0
fi

# Emptied first: the feed holds exactly this build's packages, never a stale one of the same version.
rm -rf "$FEED"
mkdir -p "$FEED"
for project in "${PROJECTS[@]}"; do
    echo "pack: $project" >&2
    # To stderr: stdout carries only the feed's path, for scripts/test.sh.
    dotnet pack "$project" -c Release -o "$FEED" -warnaserror -nologo -clp:NoSummary >&2
done
echo "pack: $(ls "$FEED"/*.nupkg | wc -l) packages in $FEED" >&2
echo "$FEED"
