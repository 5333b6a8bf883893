#!/usr/bin/env bash
# Builds the three services' container images with the .NET SDK's container support (no Docker daemon):
#   dotnet publish src/<Service> -c Release /t:PublishContainer, written as OCI archives into
#   artifacts/images/{order,storage,delivery}-service.tar (load with `docker load -i`, `podman load -i`, or
#   `skopeo copy oci-archive:...`).
#
# Base image. On a normal machine set TWOPHASE_BASE_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0 and the SDK pulls it.
# Unset (the default, because this project's machines reach no container registry, only Debian's and NuGet's), the
# script makes the equivalent itself and serves it from a throwaway registry on 127.0.0.1:
#   layer 1: a Debian 12 (bookworm) root file system from the Debian mirror (mmdebstrap) with the libraries the
#            .NET runtime needs (libc6, libgcc-s1, libstdc++6, libssl3, libicu72, zlib1g, ca-certificates, tzdata),
#            as mcr.microsoft.com/dotnet/runtime-deps:10.0 has them;
#   layer 2: the .NET and ASP.NET Core shared runtimes of the installed SDK (the same bits Microsoft's aspnet image
#            carries, at /usr/share/dotnet), and the non-root user `app` (uid 1654, as in Microsoft's images).
# The base is cached in artifacts/base/ (TWOPHASE_REBUILD_BASE=1 makes it again).
#
# Needs: the .NET SDK; for the local base also mmdebstrap, docker-registry and skopeo (Debian packages), which it
# installs with apt-get when it runs as root and they are missing, and fails naming them otherwise.
# Usage: bash scripts/images.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/artifacts/images"
BASE_DIR="$ROOT/artifacts/base"
SERVICES=(OrderService StorageService DeliveryService)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { echo "images: $*" >&2; }
fail() { say "$*"; exit 1; }

install_prerequisites() {
    local missing=()
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v skopeo >/dev/null || missing+=(skopeo)
    (( ${#missing[@]} == 0 )) && return 0
    if [[ "$(id -u)" -ne 0 ]]; then
        fail "missing ${missing[*]} to make the local base image; install them (apt-get install ${missing[*]}), or set TWOPHASE_BASE_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0 where that registry is reachable"
    fi
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The runtime the SDK runs on: the base image carries that one, so the framework-dependent apps find it.
runtime_version() {
    dotnet --list-runtimes | awk '$1 == "Microsoft.AspNetCore.App" { v = $2 } END { print v }'
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Writes blob $1 (a file) into the OCI layout's blobs and prints its digest.
put_blob() {
    local digest
    digest="$(sha "$1")"
    cp "$1" "$LAYOUT/blobs/sha256/$digest"
    echo "$digest"
}

make_base_layout() {
    local version="$1" work="$BASE_DIR/work" dotnet_root
    dotnet_root="$(dirname "$(readlink -f "$(command -v dotnet)")")"
    [[ -d "$dotnet_root/shared/Microsoft.AspNetCore.App/$version" ]] || fail "no ASP.NET Core runtime $version under $dotnet_root"
    rm -rf "$BASE_DIR" && mkdir -p "$work"

    say "layer 1: Debian 12 root file system (mmdebstrap, about two minutes)"
    mmdebstrap --quiet --variant=essential --mode=root \
        --include=ca-certificates,libc6,libgcc-s1,libicu72,libssl3,libstdc++6,tzdata,zlib1g \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "$work/rootfs.tar" >&2

    say "layer 2: .NET runtime $version and the user app (uid 1654)"
    local stage="$work/runtime"
    mkdir -p "$stage/usr/share/dotnet/shared" "$stage/usr/bin" "$stage/etc" "$stage/home/app"
    cp -a "$dotnet_root/dotnet" "$dotnet_root/host" "$stage/usr/share/dotnet/"
    cp -a "$dotnet_root"/LICENSE.txt "$dotnet_root"/ThirdPartyNotices.txt "$stage/usr/share/dotnet/" 2>/dev/null || true
    for fx in Microsoft.NETCore.App Microsoft.AspNetCore.App; do
        mkdir -p "$stage/usr/share/dotnet/shared/$fx"
        cp -a "$dotnet_root/shared/$fx/$version" "$stage/usr/share/dotnet/shared/$fx/"
    done
    ln -s ../share/dotnet/dotnet "$stage/usr/bin/dotnet"
    # The user, as Microsoft's images define it, added to the root file system's own passwd and group files.
    tar -xf "$work/rootfs.tar" -C "$stage" ./etc/passwd ./etc/group
    echo 'app:x:1654:1654::/home/app:/usr/sbin/nologin' >>"$stage/etc/passwd"
    echo 'app:x:1654:' >>"$stage/etc/group"
    tar --create --file "$work/runtime.tar" --directory "$stage" --sort=name --mtime=@0 \
        --owner=0 --group=0 --numeric-owner --exclude=./home/app .
    tar --append --file "$work/runtime.tar" --directory "$stage" --mtime=@0 \
        --owner=1654 --group=1654 --numeric-owner ./home/app

    LAYOUT="$BASE_DIR/oci"
    mkdir -p "$LAYOUT/blobs/sha256"
    local layers=() diff_ids=() tarball
    for tarball in rootfs runtime; do
        diff_ids+=("sha256:$(sha "$work/$tarball.tar")")
        gzip -n -6 -c "$work/$tarball.tar" >"$work/$tarball.tar.gz"
        layers+=("$(put_blob "$work/$tarball.tar.gz") $(stat -c %s "$work/$tarball.tar.gz")")
    done

    # The environment of mcr.microsoft.com/dotnet/aspnet:10.0: the SDK reads APP_UID for the image's user and
    # ASPNETCORE_HTTP_PORTS for its default port; the services' csproj files set their own port over it.
    jq -n --arg d1 "${diff_ids[0]}" --arg d2 "${diff_ids[1]}" --arg v "$version" '{
        architecture: "amd64", os: "linux",
        config: {
            Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "APP_UID=1654",
                  "ASPNETCORE_HTTP_PORTS=8080", "DOTNET_RUNNING_IN_CONTAINER=true",
                  ("DOTNET_VERSION=" + $v), ("ASPNET_VERSION=" + $v)],
            WorkingDir: "/"
        },
        rootfs: { type: "layers", diff_ids: [$d1, $d2] },
        history: [ { created_by: "mmdebstrap bookworm (scripts/images.sh)" },
                   { created_by: ("dotnet runtime " + $v + " and user app (scripts/images.sh)") } ]
    }' >"$work/config.json"
    local config_digest
    config_digest="$(put_blob "$work/config.json")"
    read -r l1 s1 <<<"${layers[0]}"
    read -r l2 s2 <<<"${layers[1]}"
    jq -n --arg c "sha256:$config_digest" --argjson cs "$(stat -c %s "$work/config.json")" \
        --arg l1 "sha256:$l1" --argjson s1 "$s1" --arg l2 "sha256:$l2" --argjson s2 "$s2" '{
        schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs },
        layers: [ { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l1, size: $s1 },
                  { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $l2, size: $s2 } ]
    }' >"$work/manifest.json"
    local manifest_digest
    manifest_digest="$(put_blob "$work/manifest.json")"
    jq -n --arg m "sha256:$manifest_digest" --argjson ms "$(stat -c %s "$work/manifest.json")" --arg v "$version" '{
        schemaVersion: 2,
        manifests: [ { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
                       annotations: { "org.opencontainers.image.ref.name": "10.0" } } ]
    }' >"$LAYOUT/index.json"
    echo '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
    echo "$version" >"$BASE_DIR/runtime-version"
    rm -rf "$work"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

REGISTRY_PID=""
stop_registry() {
    if [[ -n "$REGISTRY_PID" ]]; then
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
    fi
    [[ -n "${REGISTRY_DIR:-}" ]] && rm -rf "$REGISTRY_DIR"
}

# Serves the local base from a registry on loopback only, for this run: the SDK takes its base from a registry.
serve_base() {
    local port
    port="$(free_port)"
    REGISTRY_DIR="$(mktemp -d "${TMPDIR:-/tmp}/twophase-registry.XXXXXX")"
    cat >"$REGISTRY_DIR/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_DIR/data
http:
  addr: 127.0.0.1:$port
EOF
    trap stop_registry EXIT
    docker-registry serve "$REGISTRY_DIR/config.yml" >"$REGISTRY_DIR/log" 2>&1 &
    REGISTRY_PID=$!
    local attempt
    for attempt in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
        kill -0 "$REGISTRY_PID" 2>/dev/null || { cat "$REGISTRY_DIR/log" >&2; fail "docker-registry exited"; }
        (( attempt == 100 )) && fail "docker-registry did not answer on 127.0.0.1:$port"
        sleep 0.1
    done
    skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
        "oci:$BASE_DIR/oci:10.0" "docker://127.0.0.1:$port/twophase/aspnet:10.0" >&2
    # Plain HTTP to this loopback registry only.
    export DOTNET_CONTAINER_INSECURE_REGISTRIES="127.0.0.1:$port"
    BASE_IMAGE="127.0.0.1:$port/twophase/aspnet:10.0"
}

main() {
    command -v dotnet >/dev/null || fail "the .NET SDK (dotnet) is not on PATH"
    BASE_IMAGE="${TWOPHASE_BASE_IMAGE:-}"
    if [[ -z "$BASE_IMAGE" ]]; then
        install_prerequisites
        local version
        version="$(runtime_version)"
        [[ -n "$version" ]] || fail "no Microsoft.AspNetCore.App runtime in 'dotnet --list-runtimes'"
        if [[ "${TWOPHASE_REBUILD_BASE:-0}" == 1 || ! -f "$BASE_DIR/oci/index.json" || "$(cat "$BASE_DIR/runtime-version" 2>/dev/null)" != "$version" ]]; then
            make_base_layout "$version"
        fi
        serve_base
    fi
    say "base image $BASE_IMAGE"
    mkdir -p "$OUT"
    local service
    for service in "${SERVICES[@]}"; do
        local repository
        repository="$(dotnet msbuild "$ROOT/src/$service" -getProperty:ContainerRepository)"
        local archive="$OUT/${repository##*/}.tar"
        rm -f "$archive"
        say "$service -> $archive"
        dotnet publish "$ROOT/src/$service" -c Release -nologo -v quiet /t:PublishContainer \
            -p:ContainerBaseImage="$BASE_IMAGE" -p:ContainerArchiveOutputPath="$archive" >&2
        [[ -s "$archive" ]] || fail "$service: no archive at $archive"
    done
    say "done: $(cd "$OUT" && ls ./*.tar | tr '\n' ' ')"
}

main "$@"
