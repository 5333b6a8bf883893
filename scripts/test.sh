#!/usr/bin/env bash
# The README's test command. On a fresh Debian 12 machine with the .NET SDK it installs what the tests
# need (PostgreSQL 15 server, Chromium for the browser test, HAProxy, nftables and iptables for the topology
# tests in network namespaces), starts a throwaway PostgreSQL cluster
# (scripts/pg-start.sh) unless TWOPHASE_TEST_POSTGRES already names a server, packs the library packages into
# the local feed (scripts/pack.sh; TWOPHASE_PACKAGE_FEED names it for the tests that restore from it), runs every
# test project with `dotnet test TwoPhase.slnx` plus any extra arguments, and stops PostgreSQL again.
# Usage: bash scripts/test.sh [dotnet test options]
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PG_PORT="${TWOPHASE_TEST_PG_PORT:-5433}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

install_packages() {
    local packages=()
    [[ -x /usr/lib/postgresql/15/bin/initdb ]] || packages+=(postgresql)
    # Browser test (tests/TwoPhase.Browser.Tests): Debian's Chromium, and a font so screenshots have text.
    [[ -x /usr/bin/chromium ]] || packages+=(chromium fonts-liberation)
    # Topology tests (tests/TwoPhase.Tests/Topology, docs/scaling.md): a load balancer per service, link faults with nft
    # and tc inside network namespaces (ip and tc come with iproute2).
    [[ -x /usr/sbin/haproxy ]] || packages+=(haproxy)
    command -v nft >/dev/null 2>&1 || [[ -x /usr/sbin/nft ]] || packages+=(nftables)
    command -v iptables >/dev/null 2>&1 || [[ -x /usr/sbin/iptables ]] || packages+=(iptables)
    command -v ip >/dev/null 2>&1 || [[ -x /usr/sbin/ip || -x /sbin/ip ]] || packages+=(iproute2)
    (( ${#packages[@]} == 0 )) && return 0
    if [[ "$(id -u)" -ne 0 ]]; then
        echo "test: missing ${packages[*]}; install them (apt-get install ${packages[*]}) or run as root" >&2
        return 1
    fi
    echo "test: apt-get install ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

main() {
    install_packages || return 1
    if [[ -z "${TWOPHASE_TEST_POSTGRES:-}" ]]; then
        # A cluster left over from an earlier, killed run would hold the port.
        "$ROOT/scripts/pg-stop.sh" "$PG_PORT" >/dev/null 2>&1 || true
        trap '"$ROOT/scripts/pg-stop.sh" "$PG_PORT" >/dev/null 2>&1 || true' EXIT
        if ! TWOPHASE_TEST_POSTGRES="$("$ROOT/scripts/pg-start.sh" "$PG_PORT" | tail -n 1)"; then
            echo "test: PostgreSQL did not start; the PostgreSQL tests cannot run" >&2
            return 1
        fi
        export TWOPHASE_TEST_POSTGRES
    fi

    echo "test: PostgreSQL at $TWOPHASE_TEST_POSTGRES" >&2
    # Packages first: the packaging and samples tests restore them from this folder, not from project references.
    if ! TWOPHASE_PACKAGE_FEED="$("$ROOT/scripts/pack.sh" | tail -n 1)"; then
        echo "test: packing failed; the packages cannot be tested" >&2
        return 1
    fi
    export TWOPHASE_PACKAGE_FEED
    echo "test: packages in $TWOPHASE_PACKAGE_FEED" >&2
    # A bound well inside CI's 90 minutes: a hung test host must not eat the whole budget.
    timeout 3000 dotnet test TwoPhase.slnx "$@"
}

main "$@"
