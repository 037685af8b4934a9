#!/usr/bin/env bash
# Initiates the replica set once every member answers; safe to run again (a set already
# initiated is left as it is). Runs in the mongo image as the `mongo-init` Job.
set -euo pipefail

: "${PRIMARY_NODE_IP:?set by the kind-network ConfigMap}"
set_name=rs-prod-1

for i in 0 1 2; do
  host="mongo-${i}.mongo.mongo.svc.cluster.local"
  until mongosh --quiet --host "$host" --eval 'db.adminCommand({ping: 1}).ok' >/dev/null 2>&1; do
    echo "waiting for ${host}"
    sleep 2
  done
done

mongosh --quiet --host mongo-0.mongo.mongo.svc.cluster.local --eval "
  try {
    rs.status();
    print('replica set already initiated');
  } catch (e) {
    rs.initiate({
      _id: '${set_name}',
      members: [
        {_id: 0, host: '${PRIMARY_NODE_IP}:30017', priority: 2, tags: {region: 'us-west1'}},
        {_id: 1, host: '${PRIMARY_NODE_IP}:30018', priority: 1, tags: {region: 'us-west1'}},
        {_id: 2, host: '${PRIMARY_NODE_IP}:30019', priority: 1, tags: {region: 'us-west1'}},
      ],
    });
    print('replica set initiated');
  }
"

until mongosh --quiet --host mongo-0.mongo.mongo.svc.cluster.local --eval 'db.hello().isWritablePrimary' | grep -q true; do
  echo "waiting for mongo-0 to become primary"
  sleep 2
done
echo "replica set ${set_name} has a primary"
