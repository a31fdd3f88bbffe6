#!/usr/bin/env bash
# Build the candlecast image with whichever engine works here: docker (a running daemon), else podman.
# Usage: docker/build.sh [TAG]   (default candlecast:latest; `make image` runs this)
#
# Environment, all optional:
#   CONTAINER_ENGINE  docker | podman (default: docker if its daemon answers, else podman)
#   BASE_IMAGE        default python:3.11-slim; where no registry answers and debootstrap exists, a
#                     Debian bookworm image made by docker/base-image.sh
#   BUILD_FLAGS       more flags for the engine's build, e.g. --no-cache
#   TORCH_INDEX_URL   default the PyTorch CPU index; empty when the host's pip finds the locked torch
#                     wheel without an index (a find-links folder), which the build then reads
# With podman the build sees the host's pip configuration (mirrors, CA bundle, wheel folders), mounted
# read-only, so it installs from where the host installs; docker build cannot mount, it uses the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-candlecast:latest}

source docker/engine.sh
build_opts=()
if [[ $CONTAINER_ENGINE == podman ]]; then build_opts+=(--network host); fi

if [[ -z ${BASE_IMAGE:-} ]]; then
  BASE_IMAGE=python:3.11-slim
  if ! "${engine[@]}" image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
    && ! "${engine[@]}" pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || { echo "cannot pull $BASE_IMAGE and no debootstrap to make one" >&2; exit 1; }
    BASE_IMAGE=localhost/debian-python:bookworm
    CONTAINER_ENGINE=$CONTAINER_ENGINE docker/base-image.sh "$BASE_IMAGE"
  fi
fi

if [[ $CONTAINER_ENGINE == podman ]] && command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
  # The host's effective pip settings as one config file, and every local path they name, mounted read-only.
  conf=$(mktemp)
  trap 'rm -f "$conf"' EXIT
  python3 -m pip config list 2>/dev/null | python3 -c '
import re, sys
settings = {}  # pip lists files first, then the environment, which wins
for line in sys.stdin:
    m = re.match(r"^[^=]*\.([a-z-]+)=(.*)$", line.strip())
    if m:
        settings[m[1]] = m[2].strip("\x27\"")
print("[global]", *(f"{k} = {v}" for k, v in settings.items()), sep="\n")' >"$conf"
  build_opts+=(-v "$conf:/etc/pip.conf:ro")
  # A local file:// index links to files beside it (../files), so its parent folder is mounted.
  for value in $(sed -nE 's#^[a-z-]+ = ##p' "$conf"); do
    case $value in
      file://*) path=$(dirname "${value#file://}") ;;
      /*) path=$value ;;
      *) continue ;;
    esac
    if [[ -e $path ]]; then build_opts+=(-v "$path:$path:ro"); fi
  done
  # The locked torch found with no index at all: the build takes it from the mounted folder.
  torch_pin=$(grep -E '^torch==' requirements.lock)
  if [[ -z ${TORCH_INDEX_URL+set} ]] \
    && python3 -m pip install --dry-run --no-index --no-deps --ignore-installed -q "$torch_pin" >/dev/null 2>&1; then
    TORCH_INDEX_URL=
  fi
fi
build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
if [[ -n ${TORCH_INDEX_URL+set} ]]; then build_args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL"); fi

torch_from="the PyTorch CPU index"
if [[ -n ${TORCH_INDEX_URL+set} ]]; then torch_from=${TORCH_INDEX_URL:-"pip's configured sources"}; fi
echo "building $tag with $CONTAINER_ENGINE from $BASE_IMAGE, torch from $torch_from"
# shellcheck disable=SC2086  # BUILD_FLAGS is a list of flags
"${engine[@]}" build ${BUILD_FLAGS:-} "${build_opts[@]}" "${build_args[@]}" -f docker/Dockerfile -t "$tag" .
