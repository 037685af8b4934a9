#!/usr/bin/env bash
# Builds the firedrill image and copies its binary out, so the runner runs the very same
# firedrill the clusters run.
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need docker

log "building ${IMAGE}"
docker build --tag "$IMAGE" "$REPO_DIR"

mkdir -p "${OUT_DIR}/bin"
container="$(docker create "$IMAGE")"
trap 'docker rm -f "$container" >/dev/null' EXIT
docker cp "${container}:/usr/local/bin/firedrill" "${OUT_DIR}/bin/firedrill"
"${OUT_DIR}/bin/firedrill" --version
