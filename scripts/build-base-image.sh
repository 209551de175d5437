#!/usr/bin/env bash
# A local Debian base image for offline image builds: `debootstrap --variant=minbase` of
# bookworm with Python 3.11 (the images' interpreter), the compiler and headers the trainer image
# builds with (DeepSpeed's CPU Adam, Triton's launchers), and redis-server (the deployment test's
# queue), imported with `docker import`. It stands in for the registry images that cannot be
# pulled here (Python slim, CUDA devel and runtime) through the Dockerfiles' base-image build
# arguments.
#
#   DOCKER_HOST=unix://... scripts/build-base-image.sh     # prints the image tag
#
# The root file system is cached as a tarball named by a hash of its inputs (suite, mirror,
# packages, this script) under $TRIVIA_CACHE_DIR (default /var/cache/trivia-deploy), and the
# image is tagged with the same hash: a second run with the same inputs does nothing.
set -euo pipefail
# dockerd and debootstrap live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

SUITE=${DEBIAN_SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,python3-dev,g++,gcc,libc6-dev,git,ninja-build,redis-server
CACHE_DIR=${TRIVIA_CACHE_DIR:-/var/cache/trivia-deploy}

key=$(printf '%s\n' "$SUITE" "$MIRROR" "$PACKAGES" | cat - "$0" | sha256sum | cut -c1-16)
tag="trivia-base:$SUITE-$key"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"
    exit 0
fi

command -v debootstrap >/dev/null || { echo "debootstrap not found (apt-get install debootstrap)" >&2; exit 3; }
mkdir -p "$CACHE_DIR"
tarball="$CACHE_DIR/base-$SUITE-$key.tar"
if [[ ! -s "$tarball" ]]; then
    root=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" \
        >"$CACHE_DIR/debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    # Bases made from other inputs are not needed again.
    find "$CACHE_DIR" -maxdepth 1 -name "base-$SUITE-*.tar" ! -path "$tarball" -delete
fi
docker import --change 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null
for stale in $(docker images --format '{{.Repository}}:{{.Tag}}' trivia-base); do
    if [[ "$stale" != "$tag" ]]; then
        docker rmi "$stale" >/dev/null || true
    fi
done
echo "$tag"
