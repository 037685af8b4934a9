//! Multi-document transactions on the primary: a snapshot of the catalog taken at the first
//! statement, the transaction's own writes applied to it (so its reads see them and nobody
//! else does), the documents it wrote held against other writers, and on commit one oplog
//! entry with every change, so it replicates and rolls back atomically.

use std::collections::HashSet;

use bson::Bson;

use super::catalog::{self, Catalog, Op, id_key};
use super::error::CommandError;
use firedrill_core::clock::PlatformTime;

/// How long a transaction may stay open (`transactionLifetimeLimitSeconds`, platform time)
/// before the server aborts it.
pub(crate) const TRANSACTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnState {
    Active,
    Committed,
    Aborted,
}

/// One transaction of one session.
#[derive(Debug, Clone)]
pub(crate) struct Transaction {
    pub txn_number: i64,
    pub state: TxnState,
    /// The oplog sequence number the snapshot was taken at.
    pub snapshot_seq: u64,
    /// The snapshot, with this transaction's writes applied.
    pub data: Catalog,
    /// The writes to commit, in order.
    pub ops: Vec<Op>,
    /// The documents this transaction wrote (`ns`, `_id` key), held against other writers.
    pub locked: HashSet<(String, Vec<u8>)>,
    pub started: PlatformTime,
}

impl Transaction {
    pub(crate) fn new(
        txn_number: i64,
        data: Catalog,
        snapshot_seq: u64,
        now: PlatformTime,
    ) -> Self {
        Self {
            txn_number,
            state: TxnState::Active,
            snapshot_seq,
            data,
            ops: Vec::new(),
            locked: HashSet::new(),
            started: now,
        }
    }

    /// Aborts: its writes are thrown away and its documents released.
    pub(crate) fn abort(&mut self) {
        self.state = TxnState::Aborted;
        self.data.clear();
        self.ops.clear();
        self.locked.clear();
    }

    /// Whether this open transaction holds the document `id` of `ns`.
    pub(crate) fn holds(&self, ns: &str, id: &Bson) -> bool {
        self.state == TxnState::Active && self.locked.contains(&(ns.to_owned(), id_key(id)))
    }

    /// Buffers `ops`: refused with a write conflict when a document was written by someone else
    /// after the snapshot (`committed` is the member's data now) or is held by `others`.
    ///
    /// # Errors
    ///
    /// `WriteConflict` (112) with the TransientTransactionError label.
    pub(crate) fn write(
        &mut self,
        ops: Vec<Op>,
        committed: &Catalog,
        held_by_others: impl Fn(&str, &Bson) -> bool,
    ) -> Result<(), CommandError> {
        for op in &ops {
            if let Some((ns, id)) = op.document() {
                let changed = committed
                    .get(ns)
                    .and_then(|c| c.version(id))
                    .is_some_and(|v| v > self.snapshot_seq);
                if changed || held_by_others(ns, id) {
                    return Err(write_conflict());
                }
            }
        }
        for op in &ops {
            catalog::apply(&mut self.data, op, self.snapshot_seq);
            if let Some((ns, id)) = op.document() {
                self.locked.insert((ns.to_owned(), id_key(id)));
            }
        }
        self.ops.extend(ops);
        Ok(())
    }
}

/// The error a write that meets another transaction's write gets.
pub(crate) fn write_conflict() -> CommandError {
    CommandError::new(
        112,
        "WriteConflict",
        "Caused by :: Write conflict during plan execution and yielding is disabled. :: Please retry your operation or multi-document transaction.",
    )
    .with_label("TransientTransactionError")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn insert(id: i32) -> Op {
        Op::Insert {
            ns: "db.c".into(),
            doc: doc! {"_id": id},
        }
    }

    #[test]
    fn own_writes_are_seen_by_the_transaction_only() {
        let mut committed = Catalog::new();
        catalog::apply(&mut committed, &insert(1), 1);
        let mut t = Transaction::new(1, committed.clone(), 1, PlatformTime::ZERO);
        t.write(vec![insert(2)], &committed, |_, _| false)
            .expect("no conflict");
        assert_eq!(t.data["db.c"].len(), 2);
        assert_eq!(committed["db.c"].len(), 1, "copy on write");
        assert!(t.holds("db.c", &Bson::Int32(2)));
    }

    #[test]
    fn a_document_changed_after_the_snapshot_is_a_write_conflict() {
        let mut committed = Catalog::new();
        catalog::apply(&mut committed, &insert(1), 1);
        let mut t = Transaction::new(1, committed.clone(), 1, PlatformTime::ZERO);
        catalog::apply(
            &mut committed,
            &Op::Update {
                ns: "db.c".into(),
                id: Bson::Int32(1),
                doc: doc! {"_id": 1, "v": 2},
            },
            2,
        );
        let update = Op::Update {
            ns: "db.c".into(),
            id: Bson::Int32(1),
            doc: doc! {"_id": 1, "v": 3},
        };
        let e = t
            .write(vec![update], &committed, |_, _| false)
            .expect_err("conflict");
        assert_eq!(
            (e.code, e.labels.clone()),
            (112, vec!["TransientTransactionError"])
        );
    }
}
