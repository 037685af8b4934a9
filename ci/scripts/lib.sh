#!/usr/bin/env bash
# Shared by the ci/scripts: names, paths and small helpers. Sourced, not run.
# shellcheck disable=SC2034  # the variables are used by the scripts that source this file

CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPO_DIR="$(cd "${CI_DIR}/.." && pwd)"
# Where every script writes: the env file, the firedrill binary, reports, cluster state.
OUT_DIR="${FIREDRILL_CI_OUT:-${CI_DIR}/out}"
IMAGE="${FIREDRILL_IMAGE:-firedrill:ci}"
CLUSTERS=(primary failover)
# The drills CI runs: every @ci scenario but those that kill a Mongo member (kind's replica set
# declares no way back from a kill).
CI_TAGS="${FIREDRILL_CI_TAGS:-@ci and not @member-kill}"

log() {
  printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2
}

die() {
  log "error: $*"
  exit 1
}

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (see ci/README.md)"
  done
}

# The address of a cluster's control-plane node on the kind docker network.
node_ip() {
  local cluster="$1" ip
  ip="$(docker inspect -f '{{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}}{{end}}' "${cluster}-control-plane")"
  [ -n "$ip" ] || die "cluster ${cluster} has no address on the kind network"
  printf '%s\n' "$ip"
}
