#!/usr/bin/env bash
# Waits until everything deployed is ready: the storefronts, Toxiproxy, the front door, every
# replica set member, and the init Job that elected a primary.
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need kubectl
timeout="${FIREDRILL_CI_WAIT:-600s}"

for namespace in prod-1 prod-2 prod-3; do
  kubectl --context kind-primary -n "$namespace" rollout status deployment/storefront --timeout "$timeout"
  kubectl --context kind-failover -n "$namespace" rollout status deployment/storefront --timeout "$timeout"
done
kubectl --context kind-primary -n firedrill rollout status deployment/toxiproxy --timeout "$timeout"
kubectl --context kind-primary -n firedrill rollout status deployment/front-door --timeout "$timeout"
kubectl --context kind-primary -n mongo rollout status statefulset/mongo --timeout "$timeout"
kubectl --context kind-primary -n mongo wait job/mongo-init --for condition=complete --timeout "$timeout"
log "everything is ready"
