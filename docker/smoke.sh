#!/usr/bin/env bash
# Build the image, then run it as its non-root user: `candlecast --help`, the offline demo (no network at
# all: the exchange emulator and Prefect's server run on the container's loopback) with the state folder
# on a mounted host folder, and `candlecast status` from a second container on that folder.
# Too slow for every CI run (minutes): run it by hand after a change to docker/, the lock or the demo.
# Usage: docker/smoke.sh [TAG]   (default candlecast:smoke)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-candlecast:smoke}
source docker/engine.sh

t0=$(date +%s)
docker/build.sh "$tag"
t1=$(date +%s)
echo "build: $((t1 - t0)) s; image size: $("${engine[@]}" image inspect --format '{{.Size}}' "$tag") bytes"

state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
chmod 777 "$state"  # the image's user (uid 10001) writes here
run=("${engine[@]}" run --rm --network none -v "$state:/data/candlecast")
if ! "${run[@]}" "$tag" true 2>/dev/null; then
  # podman's default limits (1M open files...) can exceed what a nested container may set: stay below the host's
  run+=(--ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" --ulimit nproc=32768:32768)
fi
run+=("$tag")

[[ $("${run[@]}" id -u) == 10001 ]] || { echo "FAIL: the image does not run as uid 10001" >&2; exit 1; }
help=$("${run[@]}" candlecast --help)
[[ $help == *Commands* ]] || { echo "FAIL: candlecast --help: $help" >&2; exit 1; }
"${run[@]}" candlecast run --config configs/demo.yaml
t2=$(date +%s)
"${run[@]}" candlecast status

forecasts=$(find "$state/predictions" -name 'cutoff=*.parquet' -user 10001 | wc -l)
symbols=$("${run[@]}" python -c "from candlecast.config import RunConfig; print(len(RunConfig.from_yaml('configs/demo.yaml').series))")
echo "demo: $((t2 - t1)) s; forecast files in the mounted folder: $forecasts (series: $symbols)"
[[ $forecasts -ge $symbols && $forecasts -gt 0 ]] || { echo "FAIL: the demo's forecasts are not in the mounted folder" >&2; exit 1; }
echo "smoke OK"
