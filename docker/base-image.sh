#!/usr/bin/env bash
# A local stand-in for python:3.11-slim where no container registry is reachable but a Debian mirror is:
# Debian bookworm's python3 is 3.11, made with debootstrap and imported as an image (root, podman).
# Usage: docker/base-image.sh [IMAGE]   (default localhost/debian-python:bookworm)
set -euo pipefail
image=${1:-localhost/debian-python:bookworm}
engine=${CONTAINER_ENGINE:-podman}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if "$engine" image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists"
  exit 0
fi
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >/dev/null
# The slim image's python is `python`; Debian's is python3 only.
ln -s python3 "$rootfs/usr/bin/python"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | "$engine" import - "$image" >/dev/null
echo "base image $image imported"
