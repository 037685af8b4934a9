#!/usr/bin/env bash
# Deletes the kind clusters (and stops port-forwards expose.sh started).
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need kind

if [ -f "${OUT_DIR}/port-forward.pids" ]; then
  while read -r pid; do
    kill "$pid" 2>/dev/null || true
  done <"${OUT_DIR}/port-forward.pids"
  rm -f "${OUT_DIR}/port-forward.pids"
fi
for cluster in "${CLUSTERS[@]}"; do
  log "deleting cluster ${cluster}"
  kind delete cluster --name "$cluster"
done
