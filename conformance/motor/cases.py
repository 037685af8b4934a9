"""motor (asyncio) against the embedded MongoDB replica set (`firedrill sim up --only mongo`).

The cases an asyncio application leans on: sessions and transactions, unique indexes,
aggregation and regex queries through async cursors. Each asserts the real server's answer.
Run by tests/conformance_mongodb.rs with FIREDRILL_MONGO_URI_PROD_2 from the env file.
"""

import os
import re
import unittest

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import WriteConcern
from pymongo.errors import DuplicateKeyError, OperationFailure

URI = os.environ["FIREDRILL_MONGO_URI_PROD_2"]
DB = "conformance_motor"


class Case(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.client = AsyncIOMotorClient(URI, serverSelectionTimeoutMS=10000)
        self.db = self.client[DB]

    async def asyncTearDown(self):
        self.client.close()

    async def coll(self, name):
        c = self.db.get_collection(name, write_concern=WriteConcern(w="majority"))
        await c.drop()
        return c


class Transactions(Case):
    async def test_commit_is_atomic_and_abort_discards(self):
        c = await self.coll("txn")
        async with await self.client.start_session() as s:
            async with s.start_transaction():
                await c.insert_one({"_id": 1, "v": "a"}, session=s)
                await c.insert_one({"_id": 2, "v": "b"}, session=s)
                self.assertEqual(await c.count_documents({}), 0, "not visible before commit")
                self.assertEqual(await c.count_documents({}, session=s), 2, "visible to the transaction")
            self.assertEqual(await c.find({}).sort("_id", 1).to_list(None), [{"_id": 1, "v": "a"}, {"_id": 2, "v": "b"}])
            s.start_transaction()
            await c.delete_many({}, session=s)
            await s.abort_transaction()
        self.assertEqual(await c.count_documents({}), 2)

    async def test_with_transaction(self):
        c = await self.coll("withtxn")
        await c.insert_one({"_id": "balance", "n": 10})

        async def transfer(s):
            await c.update_one({"_id": "balance"}, {"$inc": {"n": -3}}, session=s)
            await c.insert_one({"_id": "ledger", "moved": 3}, session=s)

        async with await self.client.start_session() as s:
            await s.with_transaction(transfer)
        self.assertEqual(await c.find_one({"_id": "balance"}), {"_id": "balance", "n": 7})
        self.assertEqual(await c.find_one({"_id": "ledger"}), {"_id": "ledger", "moved": 3})

    async def test_a_write_error_aborts_the_transaction(self):
        c = await self.coll("txnerr")
        await c.insert_one({"_id": 1})
        async with await self.client.start_session() as s:
            s.start_transaction()
            await c.insert_one({"_id": 2}, session=s)
            with self.assertRaises(DuplicateKeyError):
                await c.insert_one({"_id": 1}, session=s)
            with self.assertRaises(OperationFailure) as caught:
                await c.insert_one({"_id": 3}, session=s)
            self.assertEqual(caught.exception.code, 251)
            await s.abort_transaction()
        self.assertEqual(await c.count_documents({}), 1)


class Queries(Case):
    async def test_unique_index_and_duplicate_key(self):
        c = await self.coll("users")
        await c.create_index([("email", 1)], unique=True)
        await c.insert_one({"email": "a@x"})
        with self.assertRaises(DuplicateKeyError) as caught:
            await c.insert_one({"email": "a@x"})
        self.assertEqual(caught.exception.details["keyValue"], {"email": "a@x"})
        self.assertEqual(await c.count_documents({}), 1)

    async def test_regex_projection_and_aggregation_through_async_cursors(self):
        c = await self.coll("people")
        await c.insert_many([{"_id": i, "name": n, "team": t, "score": s} for i, (n, t, s) in enumerate(
            [("ana", "red", 3), ("bob", "blue", 5), ("al", "red", 7), ("Alba", "blue", 1)])])
        names = [d["name"] async for d in c.find({"name": re.compile("^a", re.I)}, {"_id": 0, "name": 1}).sort("_id", 1)]
        self.assertEqual(names, ["ana", "al", "Alba"])
        got = await c.aggregate([
            {"$group": {"_id": "$team", "avg": {"$avg": "$score"}, "names": {"$push": "$name"}}},
            {"$sort": {"_id": 1}},
        ]).to_list(None)
        self.assertEqual(got, [{"_id": "blue", "avg": 3.0, "names": ["bob", "Alba"]},
                               {"_id": "red", "avg": 5.0, "names": ["ana", "al"]}])

    async def test_list_collection_names_with_a_filter(self):
        await self.db.drop_collection("motor_made")
        await self.db.create_collection("motor_made")
        self.assertEqual(await self.db.list_collection_names(filter={"name": "motor_made"}), ["motor_made"])

    async def test_unimplemented_stage_is_refused(self):
        c = await self.coll("refused")
        with self.assertRaises(OperationFailure) as caught:
            await c.aggregate([{"$facet": {"a": []}}]).to_list(None)
        self.assertEqual((caught.exception.code, caught.exception.details["codeName"]), (40324, "Location40324"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
