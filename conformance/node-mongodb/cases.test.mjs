// The Node.js `mongodb` driver against the embedded MongoDB replica set (`firedrill sim up
// --only mongo`): what a Node service does with it, each case asserting the real server's answer.
// Run by tests/conformance_mongodb.rs as `node --test` with FIREDRILL_MONGO_URI_PROD_2 set.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { MongoClient, MongoServerError, MongoWriteConcernError, ReadPreference } from 'mongodb';

const uri = process.env.FIREDRILL_MONGO_URI_PROD_2;
let client;
let db;

before(async () => {
  client = new MongoClient(uri, { serverSelectionTimeoutMS: 10000 });
  await client.connect();
  db = client.db('conformance_node');
});

after(async () => {
  await client.close();
});

async function fresh(name) {
  const c = db.collection(name, { writeConcern: { w: 'majority' } });
  await c.drop().catch(() => {});
  return c;
}

describe('transactions', () => {
  test('withTransaction commits every write at once', async () => {
    const c = await fresh('txn');
    await c.insertOne({ _id: 'stock', n: 5 });
    const session = client.startSession();
    try {
      await session.withTransaction(async () => {
        await c.updateOne({ _id: 'stock' }, { $inc: { n: -2 } }, { session });
        await c.insertOne({ _id: 'order', qty: 2 }, { session });
        assert.equal(await c.countDocuments({ _id: 'order' }), 0, 'invisible outside before commit');
      });
    } finally {
      await session.endSession();
    }
    assert.deepEqual(await c.find().sort({ _id: 1 }).toArray(), [{ _id: 'order', qty: 2 }, { _id: 'stock', n: 3 }]);
  });

  test('abortTransaction discards the writes', async () => {
    const c = await fresh('abort');
    const session = client.startSession();
    session.startTransaction();
    await c.insertOne({ _id: 1 }, { session });
    await session.abortTransaction();
    await session.endSession();
    assert.equal(await c.countDocuments({}), 0);
  });
});

describe('writes', () => {
  test('a unique index refuses a duplicate with keyPattern and keyValue', async () => {
    const c = await fresh('users');
    assert.equal(await c.createIndex({ email: 1 }, { unique: true }), 'email_1');
    await c.insertOne({ email: 'a@x' });
    await assert.rejects(c.insertOne({ email: 'a@x' }), (e) => {
      assert.ok(e instanceof MongoServerError);
      assert.equal(e.code, 11000);
      assert.deepEqual(e.keyPattern, { email: 1 });
      assert.deepEqual(e.keyValue, { email: 'a@x' });
      return true;
    });
  });

  test('a document over 16 MiB is refused by the server', async () => {
    const c = await fresh('big');
    await assert.rejects(c.insertOne({ _id: 1, blob: 'x'.repeat(16 * 1024 * 1024) }), (e) => {
      assert.ok(e instanceof MongoServerError, String(e));
      assert.equal(e.code, 2);
      assert.match(e.message, /^object to insert too large\. size in bytes: \d+, max size: 16777216/);
      return true;
    });
    assert.equal(await c.countDocuments({}), 0);
  });

  test('an unknown write-concern tag is error 79 after the write', async () => {
    const c = await fresh('wtag');
    await assert.rejects(c.insertOne({ _id: 1 }, { writeConcern: { w: 'nosuchtag' } }), (e) => {
      assert.ok(e instanceof MongoWriteConcernError, String(e));
      assert.equal(e.code, 79);
      assert.equal(e.codeName, 'UnknownReplWriteConcern');
      return true;
    });
    assert.equal(await c.countDocuments({}), 1);
  });

  test('$push with $each, the positional operator and bulkWrite', async () => {
    const c = await fresh('orders');
    await c.insertOne({ _id: 1, lines: [{ sku: 'a', q: 1 }, { sku: 'b', q: 1 }], tags: [] });
    const r = await c.bulkWrite([
      { updateOne: { filter: { _id: 1, 'lines.sku': 'b' }, update: { $inc: { 'lines.$.q': 4 } } } },
      { updateOne: { filter: { _id: 1 }, update: { $push: { tags: { $each: ['x', 'y'] } } } } },
      { insertOne: { document: { _id: 2, lines: [], tags: [] } } },
      { deleteOne: { filter: { _id: 2 } } },
    ]);
    assert.deepEqual([r.modifiedCount, r.insertedCount, r.deletedCount], [2, 1, 1]);
    assert.deepEqual(await c.findOne({ _id: 1 }), { _id: 1, lines: [{ sku: 'a', q: 1 }, { sku: 'b', q: 5 }], tags: ['x', 'y'] });
  });
});

describe('reads', () => {
  test('aggregate with $unwind, $lookup and $group', async () => {
    const orders = await fresh('agg_orders');
    const items = await fresh('agg_items');
    await items.insertMany([{ _id: 'a', price: 2 }, { _id: 'b', price: 10 }]);
    await orders.insertMany([{ _id: 1, skus: ['a', 'b'] }, { _id: 2, skus: ['a'] }]);
    const got = await orders.aggregate([
      { $unwind: '$skus' },
      { $lookup: { from: 'agg_items', localField: 'skus', foreignField: '_id', as: 'item' } },
      { $group: { _id: '$_id', total: { $sum: { $first: '$item.price' } }, skus: { $push: '$skus' } } },
      { $sort: { _id: 1 } },
    ]).toArray();
    assert.deepEqual(got, [{ _id: 1, total: 12, skus: ['a', 'b'] }, { _id: 2, total: 2, skus: ['a'] }]);
  });

  test('a causally consistent session reads its write on a secondary', async () => {
    const c = await fresh('causal');
    const session = client.startSession({ causalConsistency: true });
    try {
      for (let i = 0; i < 20; i += 1) {
        await c.insertOne({ _id: i }, { session, writeConcern: { w: 1 } });
        const seen = await c.findOne({ _id: i }, { session, readPreference: ReadPreference.SECONDARY });
        assert.deepEqual(seen, { _id: i });
      }
    } finally {
      await session.endSession();
    }
  });

  test('listCollections honours its filter and lists created collections', async () => {
    await db.collection('node_made').drop().catch(() => {});
    await db.createCollection('node_made');
    const names = (await db.listCollections({ name: 'node_made' }, { nameOnly: true }).toArray()).map((c) => c.name);
    assert.deepEqual(names, ['node_made']);
  });

  test('an unimplemented option is refused as an unknown field', async () => {
    const c = await fresh('collation');
    await assert.rejects(c.find({}, { collation: { locale: 'fr' } }).toArray(), (e) => {
      assert.equal(e.code, 40415);
      assert.match(e.message, /^BSON field 'find\.collation' is an unknown field\./);
      return true;
    });
  });
});
