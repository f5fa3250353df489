#!/usr/bin/env bash
# Builds every image of the stack with no container registry: Debian bases made with debootstrap,
# stand-ins for postgres, redis, prometheus and the exporters from Debian's packages, and the
# project's own images (api, locust) on the trixie base. Tags come from offline.env and say the
# version of what is inside; the build fails when Debian's package is not that version (the
# upstream images the compose file pins are in the same series: tests/unit/test_offline_pins.py).
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

debootstrap_image() {  # debootstrap_image TAG SUITE PACKAGES: a minimal Debian root imported as TAG
    local tag=$1 suite=$2 packages=$3
    have_image "$tag" && { echo "base: $tag present"; return; }
    command -v debootstrap >/dev/null || { echo "error: debootstrap missing: apt-get install -y debootstrap" >&2; exit 1; }
    local rootfs
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' RETURN
    echo "base: debootstrap $suite from $(debian_mirror)"
    debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$(debian_mirror)" >/dev/null
    # The machine's CA bundle, so that builds reach the package registries through a TLS-inspecting proxy.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    if [ "$tag" = "$LAB_BASE_IMAGE" ]; then  # it stands in for python:X.Y-slim: its python3 must be X.Y
        local want have
        want=$(image_version "$tag")
        have=$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        [ "$have" = "$want" ] || { echo "error: $suite has python3 $have, $tag says $want: fix LAB_BASE_IMAGE in offline.env" >&2; exit 1; }
    fi
    tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
    echo "base: imported $tag"
}

image_version() {  # loadlab-offline/redis:8.0 -> 8.0; loadlab/python:3.13-trixie -> 3.13
    local tag=${1##*:}
    echo "${tag%%-*}"
}

build() {  # build TAG CONTEXT [docker build args...]
    local tag=$1 context=$2
    shift 2
    echo "image: building $tag"
    docker build --quiet --network host -t "$tag" "$@" "$context" >/dev/null
}

standin() {  # standin TAG CONTEXT BASE PACKAGE: a stand-in for an upstream image, built once
    local tag=$1 context=$2 base=$3 package=$4 version have
    have_image "$tag" && { echo "image: $tag present"; return; }
    version=$(image_version "$tag")
    build "$tag" "$context" --build-arg "BASE=$base" --build-arg "VERSION=$version"
    # Debian's version may carry an epoch (1:...) and a revision (...-1): the tag's series must lead it.
    have=$(docker run --rm --entrypoint dpkg-query "$tag" -W -f '${Version}' "$package")
    case "${have#*:}" in
        "$version".*) ;;
        *) docker image rm "$tag" >/dev/null
           echo "error: $package is $have in Debian, $tag says $version: fix the tag in offline.env and the upstream pin" >&2
           exit 1 ;;
    esac
}

debootstrap_image "$LAB_BASE_IMAGE" trixie python3,python3-venv,ca-certificates
debootstrap_image "$LAB_SID_BASE_IMAGE" sid ca-certificates
standin "$POSTGRES_IMAGE" "$here/postgres" "$LAB_BASE_IMAGE" "postgresql-$(image_version "$POSTGRES_IMAGE")"
standin "$REDIS_IMAGE" "$here/redis" "$LAB_BASE_IMAGE" redis-server
# trixie's prometheus is 2.53; 3.5 (the shipped major) is in sid, on its own sid base (sid's libc).
standin "$PROMETHEUS_IMAGE" "$here/prometheus" "$LAB_SID_BASE_IMAGE" prometheus
standin "$POSTGRES_EXPORTER_IMAGE" "$here/postgres-exporter" "$LAB_BASE_IMAGE" prometheus-postgres-exporter
standin "$REDIS_EXPORTER_IMAGE" "$here/redis-exporter" "$LAB_BASE_IMAGE" prometheus-redis-exporter
standin "$NODE_EXPORTER_IMAGE" "$here/node-exporter" "$LAB_BASE_IMAGE" prometheus-node-exporter
standin "$PROCESS_EXPORTER_IMAGE" "$here/process-exporter" "$LAB_BASE_IMAGE" prometheus-process-exporter
build "$API_IMAGE" "$root/compose/api" --build-arg "BASE=$LAB_BASE_IMAGE"
build "$LOCUST_IMAGE" "$root" -f "$root/compose/locust/Dockerfile" --build-arg "BASE=$LAB_BASE_IMAGE"
echo "offline images ready: run the stack with LAB_OFFLINE=1 (see README, Offline and air-gapped use)"
