"""pymongo 4 against the embedded MongoDB replica set (`firedrill sim up --only mongo`).

Every case asserts the exact answer a real MongoDB 6.0 replica set gives: the documents, or the
error code and codeName of a refusal. Run by tests/conformance_mongodb.rs with
FIREDRILL_MONGO_URI_PROD_2 (prod-2: a self-managed three-member set; prod-1 is the Atlas-shaped cluster) from the env file `sim up --env-file` writes; by hand:

    firedrill sim up --only mongo --env-file /tmp/sim.env &
    set -a; . /tmp/sim.env; set +a
    python3 conformance/pymongo/cases.py
"""

import datetime
import os
import re
import time
import unittest

import bson
from bson.regex import Regex
from pymongo import ASCENDING, MongoClient, ReadPreference, WriteConcern
from pymongo.errors import (
    CollectionInvalid,
    DuplicateKeyError,
    OperationFailure,
    WriteConcernError,
    WriteError,
)
from pymongo.read_concern import ReadConcern

URI = os.environ["FIREDRILL_MONGO_URI_PROD_2"]
DB = "conformance_pymongo"


def client(**kwargs):
    return MongoClient(URI, serverSelectionTimeoutMS=10000, connectTimeoutMS=5000, **kwargs)


class Case(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = client()
        cls.db = cls.client[DB]

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def coll(self, name):
        """A fresh collection named after the case."""
        c = self.db[name]
        c.drop()
        return c

    def assertRefused(self, code, code_name, call):
        with self.assertRaises(OperationFailure) as caught:
            call()
        self.assertEqual(caught.exception.code, code, caught.exception.details)
        self.assertEqual(caught.exception.details.get("codeName"), code_name)
        return caught.exception


class Discovery(Case):
    def test_discovers_the_set_writes_and_reads(self):
        status = self.client.admin.command("replSetGetStatus")
        members = [m["name"] for m in status["members"]]
        self.assertEqual("%s:%d" % self.client.primary, members[0])
        # The driver's monitors find the secondaries one by one after the first command; wait
        # for discovery to settle as pymongo's own tests do, and fail if it never does.
        deadline = time.monotonic() + 10
        while len(self.client.secondaries) < len(members) - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(sorted("%s:%d" % s for s in self.client.secondaries), sorted(members[1:]))
        self.assertEqual(status["set"], "rs-prod-2")
        c = self.coll("discovery").with_options(write_concern=WriteConcern(w="majority"))
        c.insert_one({"_id": 1, "seq": 1})
        c.insert_many([{"_id": i, "seq": i} for i in range(2, 6)])
        c.update_one({"_id": 3}, {"$set": {"seen": True}})
        self.assertEqual([d["seq"] for d in c.find({"seq": {"$gt": 1}}).sort("seq", -1).limit(3)], [5, 4, 3])
        self.assertEqual(c.count_documents({}), 5)
        self.assertEqual(c.find_one({"_id": 3}), {"_id": 3, "seq": 3, "seen": True})


class RegexFilters(Case):
    def setUp(self):
        self.c = self.coll("regex")
        self.c.insert_many(
            [{"_id": 1, "name": "alice"}, {"_id": 2, "name": "bob"}, {"_id": 3, "name": "Anna"},
             {"_id": 4, "name": "albert"}, {"_id": 5, "name": ["x", "amy"]}, {"_id": 6, "name": 7}]
        )

    def ids(self, query):
        return [d["_id"] for d in self.c.find(query).sort("_id", 1)]

    def test_bson_regex_values_match(self):
        self.assertEqual(self.ids({"name": re.compile("^a")}), [1, 4, 5])
        self.assertEqual(self.ids({"name": Regex("^A", "i")}), [1, 3, 4, 5])
        self.assertEqual(self.ids({"name": {"$in": [re.compile("^b"), 7]}}), [2, 6])

    def test_regex_operator_with_options(self):
        self.assertEqual(self.ids({"name": {"$regex": "^a", "$options": "i"}}), [1, 3, 4, 5])
        self.assertEqual(self.ids({"name": {"$regex": "E R T$", "$options": "ix"}}), [4])
        self.assertEqual(self.ids({"name": {"$not": re.compile("^a")}}), [2, 3, 6])

    def test_invalid_regex_is_refused(self):
        self.assertRefused(51091, "Location51091", lambda: list(self.c.find({"name": {"$regex": "("}})))
        self.assertRefused(
            51108, "Location51108", lambda: list(self.c.find({"name": {"$regex": "a", "$options": "z"}}))
        )


class QueryOperators(Case):
    def setUp(self):
        self.c = self.coll("operators")
        self.c.insert_many(
            [
                {"_id": 1, "a": 5, "b": 3, "tags": ["x", "y"], "s": "five",
                 "items": [{"k": "p", "n": 1}, {"k": "q", "n": 9}]},
                {"_id": 2, "a": 2, "b": 4, "tags": ["x"], "s": 2.5, "items": [{"k": "p", "n": 7}]},
                {"_id": 3, "a": 9, "b": 9, "tags": [], "items": []},
            ]
        )

    def ids(self, query):
        return [d["_id"] for d in self.c.find(query).sort("_id", 1)]

    def test_type(self):
        self.assertEqual(self.ids({"s": {"$type": "string"}}), [1])
        self.assertEqual(self.ids({"s": {"$type": 1}}), [2])
        self.assertEqual(self.ids({"s": {"$type": "number"}}), [2])
        self.assertEqual(self.ids({"tags": {"$type": "array"}}), [1, 2, 3])
        self.assertEqual(self.ids({"s": {"$type": ["string", "double"]}}), [1, 2])

    def test_not_all_size(self):
        self.assertEqual(self.ids({"a": {"$not": {"$gt": 4}}}), [2])
        self.assertEqual(self.ids({"tags": {"$all": ["x", "y"]}}), [1])
        self.assertEqual(self.ids({"tags": {"$size": 1}}), [2])
        self.assertEqual(self.ids({"tags": {"$size": 0}}), [3])

    def test_elem_match_and_dotted_paths_into_arrays(self):
        self.assertEqual(self.ids({"items": {"$elemMatch": {"k": "p", "n": {"$gt": 5}}}}), [2])
        # Without $elemMatch, each condition may match a different element.
        self.assertEqual(self.ids({"items.k": "p", "items.n": {"$gt": 5}}), [1, 2])
        self.assertEqual(self.ids({"items.n": 9}), [1])
        self.assertEqual(self.ids({"items.1.k": "q"}), [1])

    def test_mod_and_expr(self):
        self.assertEqual(self.ids({"a": {"$mod": [4, 1]}}), [1, 3])
        self.assertEqual(self.ids({"$expr": {"$gt": ["$a", "$b"]}}), [1])
        self.assertEqual(self.ids({"$expr": {"$eq": [{"$add": ["$a", "$b"]}, 6]}}), [2])


class Projections(Case):
    def setUp(self):
        self.c = self.coll("projection")
        self.c.insert_one({"_id": 1, "a": {"b": 1, "c": 2}, "d": 3, "arr": [1, 2, 3, 4]})

    def test_id_only_and_dotted_paths(self):
        self.assertEqual(self.c.find_one({}, {"_id": 1}), {"_id": 1})
        self.assertEqual(self.c.find_one({}, {"a.b": 1}), {"_id": 1, "a": {"b": 1}})
        self.assertEqual(self.c.find_one({}, {"a.b": 0, "arr": 0}), {"_id": 1, "a": {"c": 2}, "d": 3})
        self.assertEqual(self.c.find_one({}, {"_id": 0, "d": 1}), {"d": 3})

    def test_slice_and_positional(self):
        self.assertEqual(self.c.find_one({}, {"arr": {"$slice": 2}, "_id": 0, "d": 1}), {"d": 3, "arr": [1, 2]})
        self.assertEqual(self.c.find_one({"arr": {"$gt": 2}}, {"arr.$": 1}), {"_id": 1, "arr": [3]})

    def test_computed_projection(self):
        self.assertEqual(self.c.find_one({}, {"total": {"$add": ["$d", 1]}}), {"_id": 1, "total": 4})
        got = list(self.c.aggregate([{"$project": {"x": "$a.b", "sum": {"$add": ["$a.b", "$a.c"]}, "d": 1}}]))
        self.assertEqual(got, [{"_id": 1, "d": 3, "x": 1, "sum": 3}])
        got = list(self.c.aggregate([{"$project": {"_id": 0, "a": {"c": 1}, "lit": {"$literal": "$d"}}}]))
        self.assertEqual(got, [{"a": {"c": 2}, "lit": "$d"}])

    def test_mixed_projection_is_refused(self):
        self.assertRefused(31254, "Location31254", lambda: self.c.find_one({}, {"d": 1, "a": 0}))
        self.assertRefused(31253, "Location31253", lambda: self.c.find_one({}, {"a": 0, "d": 1}))


class UpdateOperators(Case):
    def setUp(self):
        self.c = self.coll("updates")

    def test_push_each_position_slice_sort(self):
        self.c.insert_one({"_id": 1, "tags": ["a"]})
        self.c.update_one({"_id": 1}, {"$push": {"tags": {"$each": ["b", "c"]}}})
        self.assertEqual(self.c.find_one({"_id": 1})["tags"], ["a", "b", "c"])
        self.c.update_one({"_id": 1}, {"$push": {"tags": {"$each": ["z"], "$position": 0}}})
        self.assertEqual(self.c.find_one({"_id": 1})["tags"], ["z", "a", "b", "c"])
        self.c.update_one({"_id": 1}, {"$push": {"tags": {"$each": ["d"], "$sort": 1, "$slice": -3}}})
        self.assertEqual(self.c.find_one({"_id": 1})["tags"], ["c", "d", "z"])

    def test_positional_operator(self):
        self.c.insert_one({"_id": 1, "grades": [80, 85, 90], "items": [{"sku": "a", "q": 1}, {"sku": "b", "q": 2}]})
        self.c.update_one({"_id": 1, "grades": 85}, {"$set": {"grades.$": 86}})
        self.c.update_one({"_id": 1, "items.sku": "b"}, {"$inc": {"items.$.q": 5}})
        self.c.update_one({"_id": 1}, {"$inc": {"grades.$[]": 1}})
        self.assertEqual(
            self.c.find_one({"_id": 1}),
            {"_id": 1, "grades": [81, 87, 91], "items": [{"sku": "a", "q": 1}, {"sku": "b", "q": 7}]},
        )
        self.assertRefused(2, "BadValue", lambda: self.c.update_one({"_id": 1}, {"$set": {"grades.$": 0}}))

    def test_add_to_set_pull_pop(self):
        self.c.insert_one({"_id": 1, "s": [1, 2], "p": [1, 2, 3, 4, 5, 2], "q": [1, 2, 3]})
        self.c.update_one({"_id": 1}, {"$addToSet": {"s": {"$each": [2, 3, 3]}}})
        self.c.update_one({"_id": 1}, {"$pull": {"p": {"$gte": 4}}})
        self.c.update_one({"_id": 1}, {"$pull": {"p": 2}})
        self.c.update_one({"_id": 1}, {"$pop": {"q": -1}})
        self.assertEqual(self.c.find_one({"_id": 1}), {"_id": 1, "s": [1, 2, 3], "p": [1, 3], "q": [2, 3]})
        self.c.update_one({"_id": 1}, {"$pop": {"q": 1}})
        self.assertEqual(self.c.find_one({"_id": 1})["q"], [2])

    def test_mul_rename_current_date(self):
        self.c.insert_one({"_id": 1, "n": 3, "old": "v", "nested": {"x": 1}})
        before = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        self.c.update_one(
            {"_id": 1},
            {"$mul": {"n": 2.5, "missing": 4}, "$rename": {"old": "new", "nested.x": "nested.y"},
             "$currentDate": {"at": True, "ts": {"$type": "timestamp"}}},
        )
        d = self.c.find_one({"_id": 1})
        self.assertEqual(d["n"], 7.5)
        self.assertEqual(d["missing"], 0)
        self.assertEqual(d["new"], "v")
        self.assertNotIn("old", d)
        self.assertEqual(d["nested"], {"y": 1})
        self.assertIsInstance(d["at"], datetime.datetime)
        self.assertLess(abs((d["at"] - before).total_seconds()), 60)
        self.assertIsInstance(d["ts"], bson.Timestamp)

    def test_conflicting_paths_are_refused(self):
        self.c.insert_one({"_id": 1, "a": {"b": 1}})
        self.assertRefused(40, "ConflictingUpdateOperators",
                           lambda: self.c.update_one({"_id": 1}, {"$set": {"a.b": 2}, "$inc": {"a": 1}}))
        self.assertRefused(28, "PathNotViable", lambda: self.c.update_one({"_id": 1}, {"$set": {"a.b.c": 2}}))


class Aggregation(Case):
    def setUp(self):
        self.sales = self.coll("sales")
        self.sales.insert_many(
            [
                {"_id": 1, "cat": "a", "n": 1, "tags": ["x", "y"]},
                {"_id": 2, "cat": "b", "n": 4, "tags": []},
                {"_id": 3, "cat": "a", "n": 3},
                {"_id": 4, "cat": "b", "n": 6, "tags": ["z"]},
            ]
        )
        self.cats = self.coll("cats")
        self.cats.insert_many([{"_id": "a", "label": "Apples"}, {"_id": "b", "label": "Beans"}])

    def test_group_accumulators(self):
        got = list(
            self.sales.aggregate(
                [
                    {"$sort": {"_id": 1}},
                    {"$group": {"_id": "$cat", "avg": {"$avg": "$n"}, "all": {"$push": "$n"}, "first": {"$first": "$n"},
                                "last": {"$last": "$_id"}, "total": {"$sum": "$n"}, "count": {"$count": {}},
                                "set": {"$addToSet": "$cat"}, "max": {"$max": "$n"}}},
                    {"$sort": {"_id": 1}},
                ]
            )
        )
        self.assertEqual(
            got,
            [
                {"_id": "a", "avg": 2.0, "all": [1, 3], "first": 1, "last": 3, "total": 4, "count": 2,
                 "set": ["a"], "max": 3},
                {"_id": "b", "avg": 5.0, "all": [4, 6], "first": 4, "last": 4, "total": 10, "count": 2,
                 "set": ["b"], "max": 6},
            ],
        )

    def test_unwind_add_fields_lookup(self):
        got = list(self.sales.aggregate([{"$unwind": "$tags"}, {"$project": {"tags": 1}}, {"$sort": {"tags": 1}}]))
        self.assertEqual(got, [{"_id": 1, "tags": "x"}, {"_id": 1, "tags": "y"}, {"_id": 4, "tags": "z"}])
        got = list(self.sales.aggregate([
            {"$match": {"_id": {"$in": [2, 3]}}},
            {"$unwind": {"path": "$tags", "includeArrayIndex": "i", "preserveNullAndEmptyArrays": True}},
            {"$project": {"tags": 1, "i": 1}}, {"$sort": {"_id": 1}},
        ]))
        self.assertEqual(got, [{"_id": 2, "i": None}, {"_id": 3, "i": None}])
        got = list(self.sales.aggregate([
            {"$match": {"_id": 1}},
            {"$addFields": {"double": {"$multiply": ["$n", 2]}, "cat": {"$toUpper": "$cat"}}},
            {"$project": {"tags": 0}},
        ]))
        self.assertEqual(got, [{"_id": 1, "cat": "A", "n": 1, "double": 2}])
        got = list(self.sales.aggregate([
            {"$match": {"_id": {"$in": [1, 2]}}}, {"$sort": {"_id": 1}},
            {"$lookup": {"from": "cats", "localField": "cat", "foreignField": "_id", "as": "c"}},
            {"$project": {"label": {"$arrayElemAt": ["$c.label", 0]}}},
        ]))
        self.assertEqual(got, [{"_id": 1, "label": "Apples"}, {"_id": 2, "label": "Beans"}])
        got = list(self.sales.aggregate([
            {"$match": {"_id": 3}},
            {"$lookup": {"from": "cats", "let": {"c": "$cat"}, "pipeline": [
                {"$match": {"$expr": {"$eq": ["$_id", "$$c"]}}}, {"$project": {"_id": 0, "label": 1}}], "as": "c"}},
            {"$project": {"c": 1}},
        ]))
        self.assertEqual(got, [{"_id": 3, "c": [{"label": "Apples"}]}])


class Indexes(Case):
    def test_unique_index_is_enforced_with_the_real_duplicate_key_error(self):
        c = self.coll("users")
        self.assertEqual(c.create_index("email", unique=True), "email_1")
        c.insert_one({"_id": 1, "email": "a@x"})
        with self.assertRaises(DuplicateKeyError) as caught:
            c.insert_one({"_id": 2, "email": "a@x"})
        e = caught.exception
        self.assertEqual(e.code, 11000)
        self.assertEqual(e.details["keyPattern"], {"email": 1})
        self.assertEqual(e.details["keyValue"], {"email": "a@x"})
        self.assertEqual(
            e.details["errmsg"],
            'E11000 duplicate key error collection: conformance_pymongo.users index: email_1 dup key: { email: "a@x" }',
        )
        c.insert_one({"_id": 3, "email": "b@x"})
        with self.assertRaises(DuplicateKeyError):
            c.update_one({"_id": 3}, {"$set": {"email": "a@x"}})
        self.assertEqual(c.count_documents({}), 2)

    def test_unique_index_over_duplicates_is_refused(self):
        c = self.coll("dups")
        c.insert_many([{"_id": 1, "k": 1}, {"_id": 2, "k": 1}])
        with self.assertRaises(DuplicateKeyError):
            c.create_index("k", unique=True)
        self.assertEqual([i["name"] for i in c.list_indexes()], ["_id_"])

    def test_list_and_drop_indexes(self):
        c = self.coll("idx")
        c.create_index([("a", ASCENDING), ("b", -1)], name="ab")
        c.create_index("s", unique=True, sparse=True)
        got = [(i["name"], dict(i["key"]), i.get("unique", False)) for i in c.list_indexes()]
        self.assertEqual(got, [("_id_", {"_id": 1}, False), ("ab", {"a": 1, "b": -1}, False), ("s_1", {"s": 1}, True)])
        # Sparse: documents without the field are not indexed, so they do not collide.
        c.insert_many([{"_id": 1}, {"_id": 2}])
        c.drop_index("ab")
        self.assertEqual([i["name"] for i in c.list_indexes()], ["_id_", "s_1"])
        self.assertRefused(27, "IndexNotFound", lambda: c.drop_index("nope"))
        c.drop_indexes()
        self.assertEqual([i["name"] for i in c.list_indexes()], ["_id_"])
        self.db.drop_collection("never_made")
        self.assertRefused(26, "NamespaceNotFound", lambda: self.db.command("listIndexes", "never_made"))


class Catalog(Case):
    def test_list_collections_lists_created_collections_and_honours_its_filter(self):
        for name in ["made", "mine", "other"]:
            self.db.drop_collection(name)
        self.db.create_collection("made")
        self.db.create_collection("mine")
        self.db.create_collection("other")
        names = self.db.list_collection_names()
        self.assertTrue({"made", "mine", "other"} <= set(names), names)
        self.assertEqual(self.db.list_collection_names(filter={"name": "made"}), ["made"])
        self.assertEqual(sorted(self.db.list_collection_names(filter={"name": {"$regex": "^m"}})), ["made", "mine"])
        with self.assertRaises(CollectionInvalid):
            self.db.create_collection("made")

    def test_distinct_rename_drop_database(self):
        c = self.coll("dist")
        c.insert_many([{"k": 1, "g": "a"}, {"k": 2, "g": "a"}, {"k": 1, "g": "b"}, {"k": [3, 1], "g": "c"}])
        self.assertEqual(sorted(c.distinct("k")), [1, 2, 3])
        self.assertEqual(c.distinct("g", {"k": 2}), ["a"])
        self.db.drop_collection("renamed")
        c.rename("renamed")
        self.assertEqual(self.db["renamed"].count_documents({}), 4)
        self.assertNotIn("dist", self.db.list_collection_names())
        self.assertRefused(26, "NamespaceNotFound", lambda: self.db["dist"].rename("x"))
        self.db["other2"].insert_one({})
        self.assertRefused(48, "NamespaceExists", lambda: self.db["renamed"].rename("other2"))
        self.db["renamed"].rename("other2", dropTarget=True)
        self.assertEqual(self.db["other2"].count_documents({}), 4)
        scratch = self.client["conformance_pymongo_scratch"]
        scratch["t"].insert_one({"_id": 1})
        self.assertIn("conformance_pymongo_scratch", self.client.list_database_names())
        self.client.drop_database("conformance_pymongo_scratch")
        self.assertNotIn("conformance_pymongo_scratch", self.client.list_database_names())

    def test_db_stats_coll_stats_list_commands(self):
        db = self.client["conformance_pymongo_stats"]
        self.client.drop_database(db.name)
        db["a"].insert_many([{"_id": i} for i in range(3)])
        db["b"].insert_one({"_id": 1})
        db["a"].create_index("x")
        stats = db.command("dbStats")
        self.assertEqual((stats["db"], stats["collections"], stats["objects"], stats["indexes"]),
                         (db.name, 2, 4, 3))
        coll = db.command("collStats", "a")
        self.assertEqual((coll["ns"], coll["count"], coll["nindexes"]), (db.name + ".a", 3, 2))
        commands = self.client.admin.command("listCommands")["commands"]
        for name in ["find", "insert", "aggregate", "commitTransaction", "listIndexes", "distinct"]:
            self.assertIn(name, commands)


class Transactions(Case):
    def test_commit_makes_writes_visible_and_abort_discards_them(self):
        c = self.coll("txn").with_options(write_concern=WriteConcern(w="majority"))
        c.insert_one({"_id": "seed"})
        with self.client.start_session() as s:
            with s.start_transaction():
                c.insert_one({"_id": 1}, session=s)
                self.assertEqual(c.count_documents({}, session=s), 2)
                # Outside the transaction its writes are not visible yet.
                self.assertIsNone(c.find_one({"_id": 1}))
            self.assertEqual(c.find_one({"_id": 1}), {"_id": 1})
            s.start_transaction()
            c.insert_one({"_id": 2}, session=s)
            s.abort_transaction()
        self.assertIsNone(c.find_one({"_id": 2}))
        self.assertEqual(c.count_documents({}), 2)

    def test_snapshot_isolation_and_write_conflicts(self):
        c = self.coll("snap").with_options(write_concern=WriteConcern(w="majority"))
        c.insert_one({"_id": 1, "v": 1})
        with self.client.start_session() as s:
            s.start_transaction(read_concern=ReadConcern("snapshot"))
            self.assertEqual(c.find_one({"_id": 1}, session=s)["v"], 1)
            c.update_one({"_id": 1}, {"$set": {"v": 2}})
            # The transaction keeps reading its snapshot.
            self.assertEqual(c.find_one({"_id": 1}, session=s)["v"], 1)
            with self.assertRaises(OperationFailure) as caught:
                c.update_one({"_id": 1}, {"$set": {"v": 3}}, session=s)
            self.assertEqual(caught.exception.code, 112)
            self.assertTrue(caught.exception.has_error_label("TransientTransactionError"))
            s.abort_transaction()
        self.assertEqual(c.find_one({"_id": 1})["v"], 2)

    def test_with_transaction_retries_and_commits(self):
        c = self.coll("withtxn").with_options(write_concern=WriteConcern(w="majority"))
        c.insert_one({"_id": "n", "n": 0})

        def callback(s):
            c.update_one({"_id": "n"}, {"$inc": {"n": 1}}, session=s)
            c.insert_one({"_id": "log"}, session=s)

        with self.client.start_session() as s:
            s.with_transaction(callback)
        self.assertEqual(c.find_one({"_id": "n"})["n"], 1)
        self.assertEqual(c.count_documents({}), 2)

    def test_commands_a_transaction_cannot_run_are_refused(self):
        c = self.coll("txncount")
        c.insert_one({"_id": 1})
        with self.client.start_session() as s:
            s.start_transaction()
            self.assertRefused(263, "OperationNotSupportedInTransaction",
                               lambda: self.db.command("count", "txncount", session=s))
            s.abort_transaction()


class ReplicaSetSemantics(Case):
    def test_replies_carry_cluster_and_operation_time(self):
        reply = self.db.command("ping")
        self.assertIsInstance(reply["$clusterTime"]["clusterTime"], bson.Timestamp)
        self.assertIsInstance(reply["operationTime"], bson.Timestamp)

    def test_causally_consistent_reads_from_a_secondary_see_the_session_writes(self):
        with client(readPreference="secondary") as reader:
            c = reader[DB]["causal"]
            self.db["causal"].drop()
            writer = self.db["causal"].with_options(write_concern=WriteConcern(w=1))
            with self.client.start_session(causal_consistency=True) as s:
                for i in range(20):
                    writer.insert_one({"_id": i}, session=s)
                    with reader.start_session(causal_consistency=True) as rs:
                        rs.advance_cluster_time(s.cluster_time)
                        rs.advance_operation_time(s.operation_time)
                        self.assertEqual(c.find_one({"_id": i}, session=rs), {"_id": i})

    def test_snapshot_sessions_read_every_statement_at_one_cluster_time(self):
        c = self.coll("snapshots").with_options(write_concern=WriteConcern(w="majority"))
        c.insert_many([{"_id": 1}, {"_id": 2}])
        with self.client.start_session(snapshot=True) as s:
            self.assertEqual([d["_id"] for d in c.find({}, session=s).sort("_id", 1)], [1, 2])
            c.insert_one({"_id": 3})
            self.assertEqual(c.count_documents({}), 3)
            self.assertEqual([d["_id"] for d in c.find({}, session=s).sort("_id", 1)], [1, 2])
            self.assertEqual(sorted(c.distinct("_id", session=s)), [1, 2])
        with self.client.start_session(snapshot=True) as s:
            self.assertEqual(len(list(c.find({}, session=s))), 3)

    def test_majority_reads_and_natural_order(self):
        c = self.coll("natural").with_options(write_concern=WriteConcern(w="majority"))
        c.insert_many([{"_id": i} for i in [3, 1, 2]])
        majority = c.with_options(read_concern=ReadConcern("majority"))
        self.assertEqual([d["_id"] for d in majority.find()], [3, 1, 2])
        self.assertEqual([d["_id"] for d in c.find().hint([("$natural", -1)])], [2, 1, 3])
        self.assertEqual([d["_id"] for d in c.find().sort("$natural", -1)], [2, 1, 3])

    def test_unknown_write_concern_tag_is_error_79_after_the_write(self):
        c = self.coll("wtag")
        with self.assertRaises(WriteConcernError) as caught:
            c.with_options(write_concern=WriteConcern(w="nosuchtag")).insert_one({"_id": 1})
        self.assertEqual(caught.exception.code, 79)
        self.assertEqual(caught.exception.details["codeName"], "UnknownReplWriteConcern")
        self.assertEqual(c.count_documents({}), 1)
        with self.assertRaises(WriteConcernError) as caught:
            c.with_options(write_concern=WriteConcern(w=5)).insert_one({"_id": 2})
        self.assertEqual(caught.exception.code, 100)

    def test_a_document_over_16_mib_is_refused(self):
        c = self.coll("big")
        with self.assertRaises(WriteError) as caught:
            c.insert_one({"_id": 1, "blob": b"x" * (16 * 1024 * 1024)})
        self.assertEqual(caught.exception.code, 2)
        self.assertTrue(caught.exception.details["errmsg"].startswith("object to insert too large. size in bytes: 167772"))
        self.assertEqual(c.count_documents({}), 0)
        c.insert_one({"_id": 2, "blob": b"x" * (9 * 1024 * 1024)})
        with self.assertRaises(WriteError) as caught:
            c.update_one({"_id": 2}, {"$set": {"more": b"y" * (8 * 1024 * 1024)}})
        self.assertEqual(caught.exception.code, 17419)

    def test_server_status_and_local_replset_config(self):
        status = self.client.admin.command("serverStatus")
        self.assertGreaterEqual(status["connections"]["current"], 1)
        self.assertGreater(status["connections"]["available"], 0)
        before = status["opcounters"]["insert"]
        self.coll("opcount").insert_one({})
        after = self.client.admin.command("serverStatus")["opcounters"]["insert"]
        self.assertEqual(after, before + 1)
        self.assertEqual(status["mem"]["bits"], 64)
        config = self.client.local["system.replset"].find_one()
        self.assertEqual(config["_id"], "rs-prod-2")
        self.assertEqual(len(config["members"]), 3)


class Refusals(Case):
    """What the embedded server does not implement is refused as a real server refuses it."""

    def setUp(self):
        self.c = self.coll("refusals")
        self.c.insert_one({"_id": 1, "a": 1})

    def test_unknown_command(self):
        self.assertRefused(59, "CommandNotFound", lambda: self.db.command("mapReduce", "refusals"))

    def test_unimplemented_query_operators(self):
        self.assertRefused(2, "BadValue", lambda: list(self.c.find({"a": {"$bitsAllSet": 1}})))
        self.assertRefused(2, "BadValue", lambda: list(self.c.find({"$where": "true"})))

    def test_unimplemented_stage_expression_accumulator_modifier(self):
        self.assertRefused(40324, "Location40324", lambda: list(self.c.aggregate([{"$bucketAuto": {}}])))
        self.assertRefused(168, "InvalidPipelineOperator",
                           lambda: list(self.c.aggregate([{"$project": {"x": {"$sqrt": "$a"}}}])))
        self.assertRefused(15952, "Location15952",
                           lambda: list(self.c.aggregate([{"$group": {"_id": 1, "x": {"$stdDevPop": "$a"}}}])))
        self.assertRefused(9, "FailedToParse", lambda: self.c.update_one({"_id": 1}, {"$bit": {"a": {"and": 1}}}))

    def test_unimplemented_index_options(self):
        self.assertRefused(197, "InvalidIndexSpecificationOption",
                           lambda: self.c.create_index("at", expireAfterSeconds=60))

    def test_unimplemented_options_are_unknown_fields(self):
        e = self.assertRefused(40415, "Location40415",
                               lambda: list(self.c.find({}, collation={"locale": "fr"})))
        self.assertTrue(str(e).startswith("BSON field 'find.collation' is an unknown field."), str(e))


if __name__ == "__main__":
    unittest.main(verbosity=2)
