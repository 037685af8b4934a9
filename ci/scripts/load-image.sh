#!/usr/bin/env bash
# Loads the firedrill image into both clusters' nodes (it is never pushed to a registry).
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need kind

for cluster in "${CLUSTERS[@]}"; do
  log "loading ${IMAGE} into ${cluster}"
  kind load docker-image "$IMAGE" --name "$cluster"
done
