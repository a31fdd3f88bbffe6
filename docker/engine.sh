# Sourced by docker/build.sh and docker/smoke.sh: picks the container engine and sets `engine` (an array
# to run it with) and CONTAINER_ENGINE. docker when its daemon answers, else podman.
if [[ -z ${CONTAINER_ENGINE:-} ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    CONTAINER_ENGINE=docker
  elif command -v podman >/dev/null; then
    CONTAINER_ENGINE=podman
  else
    echo "no container engine: install docker or podman" >&2
    exit 1
  fi
fi
engine=("$CONTAINER_ENGINE")
# podman's default runtime crun fails inside some containers (setrlimit, hybrid cgroups); runc works.
if [[ $CONTAINER_ENGINE == podman ]] && command -v runc >/dev/null; then engine+=(--runtime runc); fi
