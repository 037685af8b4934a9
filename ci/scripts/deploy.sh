#!/usr/bin/env bash
# Deploys ci/k8s/overlays/<cluster> into each cluster. First the `kind-network` ConfigMaps:
# the node addresses on the kind docker network, known only once kind made the clusters, which
# the members of the replica set, the storefronts and Toxiproxy use to reach across clusters.
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need kubectl docker

primary_ip="$(node_ip primary)"
failover_ip="$(node_ip failover)"
log "primary node ${primary_ip}, failover node ${failover_ip}"

network_config() {
  local context="$1" namespace="$2"
  kubectl --context "$context" create namespace "$namespace" --dry-run=client -o yaml |
    kubectl --context "$context" apply -f -
  kubectl --context "$context" -n "$namespace" create configmap kind-network \
    --from-literal=PRIMARY_NODE_IP="$primary_ip" \
    --from-literal=FAILOVER_NODE_IP="$failover_ip" \
    --dry-run=client -o yaml | kubectl --context "$context" apply -f -
}

for namespace in prod-1 prod-2 prod-3 firedrill mongo; do
  network_config kind-primary "$namespace"
done
for namespace in prod-1 prod-2 prod-3; do
  network_config kind-failover "$namespace"
done

for cluster in "${CLUSTERS[@]}"; do
  log "applying ci/k8s/overlays/${cluster}"
  kubectl --context "kind-${cluster}" apply -k "${CI_DIR}/k8s/overlays/${cluster}"
done
