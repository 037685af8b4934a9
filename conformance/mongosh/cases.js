// mongosh against the embedded MongoDB replica set (`firedrill sim up --only mongo`): the shell
// helpers an operator types, each asserting the real server's answer.
// Run by tests/conformance_mongodb.rs as `mongosh <FIREDRILL_MONGO_URI_PROD_2> --quiet --file cases.js`.

const assert = require('assert');

const failed = [];
let passed = 0;

function check(name, fn) {
  try {
    fn();
    passed += 1;
    print(`ok - ${name}`);
  } catch (e) {
    failed.push(name);
    print(`FAIL - ${name}\n${e && e.stack ? e.stack : e}`);
  }
}

/** Whether two shell values are the same documents (key order aside); shell results live in
 * another realm than this script's literals, so `deepStrictEqual` would compare prototypes. */
function same(actual, expected, what) {
  const canon = (v) => JSON.stringify(EJSON.serialize(v, { relaxed: true }), (k, x) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.keys(x).sort().map((key) => [key, x[key]]))
      : x);
  assert.strictEqual(canon(actual), canon(expected), what);
}

/** Runs `fn`, which must throw a server error with `code` and `codeName`. */
function refused(code, codeName, fn) {
  let caught = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, `expected error ${code} ${codeName}, got success`);
  assert.strictEqual(caught.code, code, String(caught));
  assert.strictEqual(caught.codeName, codeName, String(caught));
  return caught;
}

const t = db.getSiblingDB('conformance_mongosh');

check('rs.status names the set and its three members', () => {
  const s = rs.status();
  assert.strictEqual(s.set, 'rs-prod-2');
  same(s.members.map((m) => m.stateStr), ['PRIMARY', 'SECONDARY', 'SECONDARY']);
});

check('rs.printSecondaryReplicationInfo reads local.system.replset and reports both secondaries', () => {
  assert.strictEqual(db.getSiblingDB('local').system.replset.countDocuments({}), 1);
  t.repl.insertOne({ at: 1 });
  const info = rs.printSecondaryReplicationInfo();
  const sources = Object.keys(info.value).filter((k) => k.startsWith('source: '));
  assert.strictEqual(sources.length, 2, JSON.stringify(info.value));
  for (const k of sources) {
    assert.match(info.value[k].replLag, /^\d+ secs \(.* hrs\) behind the primary $/);
  }
});

check('db.getReplicationInfo reads local.oplog.rs', () => {
  const info = db.getReplicationInfo();
  assert.ok(info.logSizeMB > 0, JSON.stringify(info));
  assert.ok(info.usedMB >= 0 && info.tFirst && info.tLast, JSON.stringify(info));
});

check('db.serverStatus has connections, opcounters and mem', () => {
  const before = db.serverStatus();
  assert.ok(before.connections.current >= 1 && before.connections.available > 0);
  assert.strictEqual(before.mem.bits, 64);
  t.counted.insertMany([{}, {}]);
  const after = db.serverStatus();
  assert.strictEqual(Number(after.opcounters.insert) - Number(before.opcounters.insert), 2);
});

check('regex filters, projections and $push with $each', () => {
  t.people.drop();
  t.people.insertMany([{ _id: 1, name: 'ana', tags: ['a'] }, { _id: 2, name: 'bob', tags: [] }, { _id: 3, name: 'Al', tags: [] }]);
  same(t.people.find({ name: /^a/i }, { _id: 1 }).sort({ _id: 1 }).toArray(), [{ _id: 1 }, { _id: 3 }]);
  t.people.updateOne({ _id: 1 }, { $push: { tags: { $each: ['b', 'c'] } } });
  same(t.people.findOne({ _id: 1 }, { _id: 0, tags: 1 }), { tags: ['a', 'b', 'c'] });
});

check('createIndex unique, getIndexes, the duplicate-key error, dropIndex', () => {
  t.users.drop();
  assert.strictEqual(t.users.createIndex({ email: 1 }, { unique: true }), 'email_1');
  same(t.users.getIndexes().map((i) => [i.name, i.unique === true]), [['_id_', false], ['email_1', true]]);
  t.users.insertOne({ email: 'a@x' });
  const e = refused(11000, 'DuplicateKey', () => t.users.insertOne({ email: 'a@x' }));
  same(e.keyValue, { email: 'a@x' });
  t.users.dropIndex('email_1');
  t.users.insertOne({ email: 'a@x' });
  assert.strictEqual(t.users.countDocuments({ email: 'a@x' }), 2);
});

check('db.stats and collection.stats', () => {
  const s = db.getSiblingDB('conformance_mongosh_stats');
  s.dropDatabase();
  s.a.insertMany([{ _id: 1 }, { _id: 2 }]);
  s.b.insertOne({ _id: 1 });
  const stats = s.stats();
  same([stats.db, stats.collections, stats.objects], ['conformance_mongosh_stats', 2, 3]);
  const a = s.a.stats();
  same([a.ns, a.count, a.nindexes], ['conformance_mongosh_stats.a', 2, 1]);
});

check('renameCollection, getCollectionNames, distinct, dropDatabase', () => {
  const s = db.getSiblingDB('conformance_mongosh_scratch');
  s.dropDatabase();
  s.createCollection('made');
  s.src.insertMany([{ k: 1 }, { k: 2 }, { k: 1 }]);
  s.src.renameCollection('dst');
  same(s.getCollectionNames().sort(), ['dst', 'made']);
  same(s.dst.distinct('k').sort(), [1, 2]);
  assert.strictEqual(s.dropDatabase().dropped, 'conformance_mongosh_scratch');
  assert.ok(!db.adminCommand({ listDatabases: 1, nameOnly: true }).databases.some((d) => d.name === 'conformance_mongosh_scratch'));
});

check('a session transaction commits atomically', () => {
  t.txn.drop();
  t.txn.insertOne({ _id: 'seed' });
  const session = db.getMongo().startSession();
  const c = session.getDatabase('conformance_mongosh').txn;
  session.startTransaction();
  c.insertOne({ _id: 1 });
  assert.strictEqual(t.txn.countDocuments({}), 1, 'not visible outside before commit');
  session.commitTransaction();
  assert.strictEqual(t.txn.countDocuments({}), 2);
  session.startTransaction();
  c.insertOne({ _id: 2 });
  session.abortTransaction();
  assert.strictEqual(t.txn.countDocuments({ _id: 2 }), 0);
  session.endSession();
});

check('what the server does not implement is refused with the real error', () => {
  refused(59, 'CommandNotFound', () => t.runCommand({ mapReduce: 'people', map: 'function(){}', reduce: 'function(){}', out: { inline: 1 } }));
  refused(40324, 'Location40324', () => t.people.aggregate([{ $bucketAuto: { groupBy: '$x', buckets: 2 } }]).toArray());
  refused(2, 'BadValue', () => t.people.find({ $where: 'true' }).toArray());
});

print(`${passed} passed, ${failed.length} failed`);
if (failed.length > 0) {
  quit(1);
}
