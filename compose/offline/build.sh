#!/usr/bin/env bash
# Builds every image of the stack with no container registry: a Debian base made with debootstrap,
# stand-ins for postgres, redis, prometheus and the two exporters from Debian's packages, and the
# project's own images (api, locust) on that base. Tags come from offline.env.
#
#   compose/offline/build.sh            build the base and stand-ins if missing, and the project's images
#   compose/offline/build.sh --rebuild  rebuild the base and the stand-ins too
#
# The project's images are always built (Docker's layer cache makes that quick when nothing changed),
# so they never lag behind the code.
#
# Needs root (debootstrap), a Docker engine, and apt/PyPI reachable from the build (host network).
# DEBIAN_MIRROR overrides the Debian mirror; by default it is the one apt on this machine uses.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rebuild=0
[ "${1:-}" = --rebuild ] && rebuild=1

set -a
# shellcheck source=offline.env
. "$here/offline.env"
set +a

have_image() { [ "$rebuild" = 0 ] && docker image inspect "$1" >/dev/null 2>&1; }

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null \
        | grep -v security | head -n 1 | awk '{ print $2 }')
    if [ -z "$uri" ]; then
        echo "error: cannot tell which Debian mirror apt uses: set DEBIAN_MIRROR=<mirror URL>" >&2
        exit 1
    fi
    echo "$uri"
}

build_base() {
    have_image "$LAB_BASE_IMAGE" && { echo "base: $LAB_BASE_IMAGE present"; return; }
    command -v debootstrap >/dev/null || { echo "error: debootstrap missing: apt-get install -y debootstrap" >&2; exit 1; }
    local rootfs
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' RETURN
    echo "base: debootstrap bookworm from $(debian_mirror)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$(debian_mirror)" >/dev/null
    # The machine's CA bundle, so that builds reach the package registries through a TLS-inspecting proxy.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/bash"]' - "$LAB_BASE_IMAGE" >/dev/null
    echo "base: imported $LAB_BASE_IMAGE"
}

build() {  # build TAG CONTEXT [docker build args...]
    local tag=$1 context=$2
    shift 2
    echo "image: building $tag"
    docker build --quiet --network host --build-arg "BASE=$LAB_BASE_IMAGE" -t "$tag" "$@" "$context" >/dev/null
}

standin() {  # standin TAG CONTEXT: a stand-in for an upstream image, built once
    have_image "$1" && { echo "image: $1 present"; return; }
    build "$@"
}

build_base
standin "$POSTGRES_IMAGE" "$here/postgres"
standin "$REDIS_IMAGE" "$here/redis"
standin "$PROMETHEUS_IMAGE" "$here/prometheus"
standin "$POSTGRES_EXPORTER_IMAGE" "$here/postgres-exporter"
standin "$REDIS_EXPORTER_IMAGE" "$here/redis-exporter"
build "$API_IMAGE" "$root/compose/api"
build "$LOCUST_IMAGE" "$root" -f "$root/compose/locust/Dockerfile"
echo "offline images ready: run the stack with LAB_OFFLINE=1 (see README, Offline and air-gapped use)"
