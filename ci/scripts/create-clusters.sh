#!/usr/bin/env bash
# Creates the kind clusters `primary` (us-west1) and `failover` (us-west2) from ci/kind/.
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need kind kubectl docker

for cluster in "${CLUSTERS[@]}"; do
  if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
    log "cluster ${cluster} exists"
    continue
  fi
  log "creating cluster ${cluster}"
  kind create cluster --config "${CI_DIR}/kind/${cluster}.yaml" --wait 180s
done
for cluster in "${CLUSTERS[@]}"; do
  kubectl --context "kind-${cluster}" get nodes -L topology.kubernetes.io/zone
done
