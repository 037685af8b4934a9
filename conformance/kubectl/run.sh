#!/usr/bin/env bash
# kubectl against the embedded Kubernetes API server (`firedrill sim up --only kube`).
# Every case compares kubectl's exact output (or the object it wrote) with what a real API
# server gives; the first mismatch fails the suite with kubectl's own output.
#
# Needs: kubectl; FIREDRILL_KUBECONFIG (from sim up's env file); CONTEXT (a context in it).
set -uo pipefail

: "${FIREDRILL_KUBECONFIG:?set by sim up --env-file}"
: "${CONTEXT:?the kube context to use}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export HOME="${TMPDIR:-/tmp}/firedrill-conformance-kubectl-$$"
mkdir -p "$HOME"
trap 'rm -rf "$HOME"' EXIT
NS=conformance-kubectl
failures=0
passed=0

k() { kubectl --kubeconfig "$FIREDRILL_KUBECONFIG" --context "$CONTEXT" "$@" 2>&1; }

# expect NAME WANT GOT: exact comparison.
expect() {
  if [ "$2" == "$3" ]; then
    passed=$((passed + 1))
    echo "ok - $1"
  else
    failures=$((failures + 1))
    echo "FAIL - $1"
    echo "  want: $2"
    echo "  got:  $3"
  fi
}

# expect_match NAME REGEX GOT: the whole output matches REGEX (for ages and IPs).
expect_match() {
  if [[ "$3" =~ $2 ]]; then
    passed=$((passed + 1))
    echo "ok - $1"
  else
    failures=$((failures + 1))
    echo "FAIL - $1"
    echo "  want (regex): $2"
    echo "  got:  $3"
  fi
}

# kubectl create sends protobuf bodies (client-go's typed clients).
expect "create namespace (protobuf body)" "namespace/$NS created" "$(k create namespace $NS)"
expect "the namespace is Active" "Active" "$(k get namespace $NS -o jsonpath='{.status.phase}')"
expect "create secret generic (protobuf body)" "secret/db created" \
  "$(k -n $NS create secret generic db --from-literal=password=s3cr3t)"
expect "the secret's data is base64" "czNjcjN0" "$(k -n $NS get secret db -o jsonpath='{.data.password}')"
expect "the secret's type defaults to Opaque" "Opaque" "$(k -n $NS get secret db -o jsonpath='{.type}')"
expect "create configmap (protobuf body)" "configmap/conf created" \
  "$(k -n $NS create configmap conf --from-literal=a=1 --from-literal=b=2)"
expect "create deployment (protobuf body)" "deployment.apps/web created" \
  "$(k -n $NS create deployment web --image=registry.example/web:1 --replicas=2 --port=8080)"
expect "the deployment keeps its spec" "2 registry.example/web:1 8080" \
  "$(k -n $NS get deployment web -o jsonpath='{.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}')"
expect "rollout status of the new deployment" 'deployment "web" successfully rolled out' \
  "$(k -n $NS rollout status deployment/web --timeout=60s | tail -n 1)"
expect "create service clusterip (protobuf body)" "service/web created" \
  "$(k -n $NS create service clusterip web --tcp=80:8080)"
expect "create role (protobuf body)" "role.rbac.authorization.k8s.io/reader created" \
  "$(k -n $NS create role reader --verb=get --resource=pods)"
expect "create rolebinding (protobuf body)" "rolebinding.rbac.authorization.k8s.io/reader created" \
  "$(k -n $NS create rolebinding reader --role=reader --user=alice)"

# Plain kubectl apply: client-side validation through /openapi/v3, no --validate=false.
expect "plain apply creates" "service/api created" "$(k -n $NS apply -f "$HERE/service.yaml")"
expect "plain apply again is unchanged" "service/api unchanged" "$(k -n $NS apply -f "$HERE/service.yaml")"
expect_match "apply refuses an unknown field (strict validation)" \
  '.*unknown field "spec\.prots".*' "$(k -n $NS apply -f "$HERE/typo.yaml")"
expect_match "explain shows the schema's description" \
  '.*KIND:[[:space:]]+Service.*VERSION:[[:space:]]+v1.*Service is a named abstraction of software service.*' \
  "$(k explain service)"

# Server-side apply: field ownership, conflicts, and removal of what an apply no longer sets.
expect "create configmap as kubectl-create" "configmap/ssa created" "$(k -n $NS create configmap ssa --from-literal=a=1)"
expect_match "apply --server-side conflicts on a field kubectl-create owns" \
  '.*Apply failed with 1 conflict: conflict with "kubectl-create" using v1: \.data\.a.*' \
  "$(k -n $NS apply --server-side -f "$HERE/ssa-cm.yaml")"
expect "apply --server-side --force-conflicts takes it over" "configmap/ssa serverside-applied" \
  "$(k -n $NS apply --server-side --force-conflicts -f "$HERE/ssa-cm.yaml")"
expect "the applied values are stored" "2 3" "$(k -n $NS get cm ssa -o jsonpath='{.data.a} {.data.b}')"
expect "managedFields name the apply's manager" "kubectl Apply" \
  "$(k -n $NS get cm ssa -o jsonpath='{.metadata.managedFields[?(@.operation=="Apply")].manager} {.metadata.managedFields[?(@.manager=="kubectl")].operation}')"
expect "a field the next apply drops is removed" "configmap/ssa serverside-applied {\"a\":\"2\"}" \
  "$(k -n $NS apply --server-side -f "$HERE/ssa-cm-less.yaml") $(k -n $NS get cm ssa -o jsonpath='{.data}')"

# Server-side printing: the real columns, and ages on the wall clock.
expect_match "get svc prints TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE" \
  '^NAME +TYPE +CLUSTER-IP +EXTERNAL-IP +PORT\(S\) +AGE'$'\n''web +ClusterIP +10\.(9[6-9]|10[0-9]|11[01])\.[0-9]+\.[0-9]+ +<none> +80/TCP +[0-9]+s$' \
  "$(k -n $NS get svc web)"
expect_match "get cm prints DATA and a wall-clock age" \
  '^NAME +DATA +AGE'$'\n''conf +2 +[0-9]+s$' "$(k -n $NS get cm conf)"
expect_match "get rs prints DESIRED CURRENT READY" \
  '^NAME +DESIRED +CURRENT +READY +AGE'$'\n''web-[a-z0-9]+ +2 +2 +2 +[0-9]+s$' "$(k -n $NS get rs)"
expect_match "get events prints LAST SEEN TYPE REASON OBJECT MESSAGE" \
  '^LAST SEEN +TYPE +REASON +OBJECT +MESSAGE'$'\n''.*ScalingReplicaSet +deployment/web +Scaled up replica set web-[a-z0-9]+ from 0 to 2.*' \
  "$(k -n $NS get events)"
expect "endpoints list the two pods on the target port" "8080 8080" \
  "$(k -n $NS get endpoints web -o jsonpath='{.subsets[0].ports[0].port} {.subsets[0].ports[0].port}')"
expect "the endpoints hold two ready addresses" "2" \
  "$(k -n $NS get endpoints web -o jsonpath='{.subsets[0].addresses[*].ip}' | wc -w | tr -d ' ')"
expect "an endpoint slice names its service" "web" \
  "$(k -n $NS get endpointslices -l kubernetes.io/service-name=web -o jsonpath='{.items[0].metadata.labels.kubernetes\.io/service-name}')"

# Paging: kubectl get --chunk-size pages with limit/continue.
for i in 1 2 3 4 5; do k -n $NS create configmap "page-$i" --from-literal=i=$i >/dev/null; done
expect "get --chunk-size=2 pages through every item" "conf page-1 page-2 page-3 page-4 page-5 ssa" \
  "$(k -n $NS get cm --chunk-size=2 -o jsonpath='{.items[*].metadata.name}')"

# Who am I, and what may I do.
expect_match "auth whoami" '^ATTRIBUTE +VALUE'$'\n''Username +firedrill'$'\n''Groups +\[system:authenticated\]$' \
  "$(k auth whoami)"
expect_match "auth can-i --list" '^Resources +Non-Resource URLs +Resource Names +Verbs'$'\n''\*\.\* +\[\] +\[\] +\[\*\]'$'\n''.*' \
  "$(k auth can-i --list -n $NS)"
expect "auth can-i create pods" "yes" "$(k auth can-i create pods -n $NS)"

# Kinds the embedded server does not serve are refused as by a server without them.
expect "create job: the server has no batch/v1" \
  'error: failed to create job: the server could not find the requested resource (post jobs.batch)' \
  "$(k -n $NS create job once --image=registry.example/job:1)"
expect "get cronjobs: unknown resource type" \
  'error: the server doesn'"'"'t have a resource type "cronjobs"' "$(k -n $NS get cronjobs)"
expect "get statefulsets: not served (no controller would run them)" \
  'error: the server doesn'"'"'t have a resource type "statefulsets"' "$(k -n $NS get statefulsets)"
expect "get hpa: unknown resource type" \
  'error: the server doesn'"'"'t have a resource type "hpa"' "$(k -n $NS get hpa)"

# Kinds served as storage.
expect "leases are served" "lease.coordination.k8s.io/leader created" \
  "$(k -n $NS apply -f "$HERE/lease.yaml")"
expect "a claim stays Pending without a provisioner" "Pending" \
  "$(k -n $NS apply -f "$HERE/pvc.yaml" >/dev/null; k -n $NS get pvc data -o jsonpath='{.status.phase}')"

expect "delete namespace" "namespace \"$NS\" deleted" "$(k delete namespace $NS --wait=false)"

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
