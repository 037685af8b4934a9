#!/usr/bin/env bash
# Writes ${OUT_DIR}/kind.env: the endpoints ci/platform.kind.yaml reads. The front door, the
# Toxiproxy API and the replica set members are NodePorts of the primary cluster, reached at
# its node address on the kind docker network (a Linux runner routes to it). Where the host
# cannot (Docker Desktop), PORT_FORWARD=1 forwards the front door and Toxiproxy to localhost;
# the replica set still needs the kind network (its members advertise node addresses).
set -euo pipefail
# shellcheck source=ci/scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need kubectl

mkdir -p "$OUT_DIR"
primary_ip="$(node_ip primary)"
front_door="http://${primary_ip}:30000"
toxiproxy="http://${primary_ip}:30474"

if [ "${PORT_FORWARD:-0}" = 1 ]; then
  kubectl --context kind-primary -n firedrill port-forward service/front-door 18080:80 >"${OUT_DIR}/port-forward-front-door.log" 2>&1 &
  echo "$!" >"${OUT_DIR}/port-forward.pids"
  kubectl --context kind-primary -n firedrill port-forward service/toxiproxy 18474:8474 >"${OUT_DIR}/port-forward-toxiproxy.log" 2>&1 &
  echo "$!" >>"${OUT_DIR}/port-forward.pids"
  front_door="http://127.0.0.1:18080"
  toxiproxy="http://127.0.0.1:18474"
fi

firedrill_bin="${FIREDRILL_BIN:-${OUT_DIR}/bin/firedrill}"
{
  printf "FIREDRILL_BIN='%s'\n" "$firedrill_bin"
  printf "FIREDRILL_FRONT_DOOR_URL='%s'\n" "$front_door"
  printf "FIREDRILL_TOXIPROXY_URL='%s'\n" "$toxiproxy"
  printf "FIREDRILL_MONGO_URI_PROD_1='mongodb://%s:30017,%s:30018,%s:30019/?replicaSet=rs-prod-1'\n" \
    "$primary_ip" "$primary_ip" "$primary_ip"
  printf "FIREDRILL_KUBECONFIG='%s'\n" "${KUBECONFIG:-${HOME}/.kube/config}"
  printf "FIREDRILL_SEED='1'\n"
} >"${OUT_DIR}/kind.env"

# Every endpoint answers before a drill starts (bounded: 60 tries, 2 s apart).
for url in "${front_door}/" "${toxiproxy}/version"; do
  for attempt in $(seq 1 60); do
    if curl -fsS --max-time 2 -o /dev/null "$url"; then
      break
    fi
    [ "$attempt" -lt 60 ] || die "${url} does not answer"
    sleep 2
  done
done
log "endpoints in ${OUT_DIR}/kind.env"
