#!/usr/bin/env bash
# Collects what a post-mortem needs beside firedrill's reports: every object and the logs of
# the pods in both clusters, and the verdicts as Markdown (for the job summary).
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need kubectl

reports="${OUT_DIR}/reports"
state="${reports}/cluster-state"
mkdir -p "$state"
for cluster in "${CLUSTERS[@]}"; do
  context="kind-${cluster}"
  kubectl --context "$context" get nodes,pods,deployments,statefulsets,services,jobs -A -o wide \
    >"${state}/${cluster}-objects.txt" 2>&1 || true
  kubectl --context "$context" get events -A --sort-by .lastTimestamp >"${state}/${cluster}-events.txt" 2>&1 || true
  for namespace in prod-1 prod-2 prod-3 firedrill mongo; do
    kubectl --context "$context" -n "$namespace" logs --all-containers --prefix --tail 2000 \
      -l 'app in (storefront,front-door,toxiproxy,mongo,mongo-init)' \
      >"${state}/${cluster}-${namespace}.log" 2>&1 || true
  done
done

if [ -f "${reports}/firedrill.json" ]; then
  "${CI_DIR}/scripts/summary.sh" "${reports}/firedrill.json" >"${reports}/summary.md" || true
fi
log "reports in ${reports}"
