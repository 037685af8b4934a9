//! Sessions and multi-document transactions: `startTransaction` opens one on the primary with
//! a snapshot of its data, later statements (`autocommit: false`) join it, `commitTransaction`
//! writes its changes as one oplog entry and waits for the write concern, `abortTransaction`
//! (or any error, a step-down, a newer transaction) throws them away.

use super::*;
use crate::mongo::txn::{Transaction, TxnState};

/// The session of a command: its `lsid` and, for retryable writes and transactions, its
/// `txnNumber`.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub lsid: Vec<u8>,
    pub txn_number: Option<i64>,
}

impl Session {
    pub(crate) fn of(cmd: &Document) -> Option<Self> {
        let lsid = cmd.get_document("lsid").ok()?;
        let txn_number = match cmd.get("txnNumber") {
            Some(Bson::Int64(i)) => Some(*i),
            Some(Bson::Int32(i)) => Some(i64::from(*i)),
            _ => None,
        };
        Some(Self {
            lsid: bson::to_vec(lsid).unwrap_or_default(),
            txn_number,
        })
    }
}

/// The transaction a statement runs in.
#[derive(Debug, Clone)]
pub(crate) struct TxnRef {
    pub lsid: Vec<u8>,
    pub txn_number: i64,
}

fn no_such_transaction(msg: String) -> CommandError {
    CommandError::new(251, "NoSuchTransaction", msg).with_label("TransientTransactionError")
}

/// Opens (`startTransaction: true`) or joins the transaction of the command's session.
///
/// # Errors
///
/// `NotWritablePrimary` off the primary, `NoSuchTransaction` for a transaction that is not open,
/// `TransactionTooOld` for a number below the session's current one.
pub(super) fn join(
    shared: &Shared,
    m: usize,
    cmd: &Document,
    session: Option<&Session>,
) -> Result<TxnRef, CommandError> {
    let (Some(session), Some(number)) = (session, session.and_then(|s| s.txn_number)) else {
        return Err(CommandError::new(
            50768,
            "Location50768",
            "txnNumber may only be provided for multi-document transactions and retryable write commands. autocommit:false was not provided, and txnNumber was provided",
        ));
    };
    if cmd.get_bool("autocommit") != Ok(false) {
        return Err(CommandError::new(
            50767,
            "Location50767",
            "autocommit:true is not supported",
        ));
    }
    let now = shared.clock.now();
    let mut st = shared.lock();
    if !st.members[m].primary || st.members[m].stepping_down {
        return Err(CommandError::not_writable_primary().with_label("TransientTransactionError"));
    }
    // A transaction with a majority or snapshot read concern reads a majority-committed
    // snapshot.
    let committed =
        if cmd.get_bool("startTransaction").unwrap_or(false) && super::reads_majority(cmd) {
            st.committed_catalog(m)
        } else {
            None
        };
    let mem = &mut st.members[m];
    let current = mem
        .transactions
        .get(&session.lsid)
        .map(|t| (t.txn_number, t.state));
    if let Some((n, _)) = current
        && n > number
    {
        return Err(CommandError::new(
            225,
            "TransactionTooOld",
            format!(
                "Cannot start transaction {number} on session because a newer transaction {n} has already started"
            ),
        ));
    }
    if cmd.get_bool("startTransaction").unwrap_or(false) {
        if let Some((n, _)) = current
            && n == number
        {
            return Err(CommandError::new(
                117,
                "ConflictingOperationInProgress",
                format!(
                    "Cannot start transaction {number} on session because it has already started"
                ),
            ));
        }
        let (data, seq) =
            committed.unwrap_or_else(|| (mem.store.collections.clone(), mem.last_optime().seq));
        mem.transactions.insert(
            session.lsid.clone(),
            Transaction::new(number, data, seq, now),
        );
    } else {
        match current {
            Some((n, TxnState::Active)) if n == number => {}
            Some((n, TxnState::Aborted)) if n == number => {
                return Err(no_such_transaction(format!(
                    "Transaction with {{ txnNumber: {number} }} has been aborted."
                )));
            }
            Some((n, TxnState::Committed)) if n == number => {
                return Err(CommandError::new(
                    256,
                    "TransactionCommitted",
                    format!("Transaction {number} has been committed."),
                ));
            }
            other => {
                return Err(no_such_transaction(format!(
                    "Given transaction number {number} does not match any in-progress transactions. The active transaction number is {}",
                    other.map_or(-1, |(n, _)| n)
                )));
            }
        }
    }
    Ok(TxnRef {
        lsid: session.lsid.clone(),
        txn_number: number,
    })
}

/// Aborts the transaction after a failed statement.
pub(super) fn abort_on_error(shared: &Shared, m: usize, t: &TxnRef) {
    let mut st = shared.lock();
    if let Some(txn) = st.members[m].transactions.get_mut(&t.lsid)
        && txn.txn_number == t.txn_number
        && txn.state == TxnState::Active
    {
        txn.abort();
    }
    drop(st);
    shared.notify();
}

fn session_txn(ctx: &Ctx<'_>) -> Result<(Vec<u8>, i64), CommandError> {
    let Some(Session {
        lsid,
        txn_number: Some(n),
    }) = &ctx.session
    else {
        return Err(CommandError::new(
            50768,
            "Location50768",
            "commitTransaction and abortTransaction need a session and a txnNumber",
        ));
    };
    Ok((lsid.clone(), *n))
}

/// `commitTransaction`: one oplog entry with every change, then the write concern.
///
/// # Errors
///
/// `NoSuchTransaction` when the transaction is not open (or was aborted).
pub(super) async fn commit(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let (lsid, number) = session_txn(ctx)?;
    let (shared, m) = (ctx.shared, ctx.m);
    let target = {
        let now = shared.clock.now();
        let mut st = shared.lock();
        if !st.members[m].primary {
            return Err(CommandError::not_writable_primary().with_label("RetryableWriteError"));
        }
        let state = st.members[m]
            .transactions
            .get(&lsid)
            .filter(|t| t.txn_number == number)
            .map(|t| t.state);
        match state {
            Some(TxnState::Active) => {
                let ops = st.members[m]
                    .transactions
                    .get_mut(&lsid)
                    .map(|t| {
                        t.state = TxnState::Committed;
                        t.data.clear();
                        t.locked.clear();
                        std::mem::take(&mut t.ops)
                    })
                    .unwrap_or_default();
                if ops.is_empty() {
                    st.members[m].last_optime()
                } else {
                    st.append(m, now, ops, None)
                }
            }
            // A retried commit answers again once its write concern holds.
            Some(TxnState::Committed) => st.members[m].last_optime(),
            Some(TxnState::Aborted) => {
                return Err(CommandError::new(
                    251,
                    "NoSuchTransaction",
                    format!("Transaction with {{ txnNumber: {number} }} has been aborted."),
                ));
            }
            None => {
                return Err(CommandError::new(
                    251,
                    "NoSuchTransaction",
                    format!(
                        "Given transaction number {number} does not match any in-progress transactions."
                    ),
                ));
            }
        }
    };
    shared.notify();
    let mut reply = doc! {};
    if let Some((wce, labels)) = write::wait_for_write_concern(shared, m, target, ctx.cmd).await {
        reply.insert("writeConcernError", wce);
        if !labels.is_empty() {
            reply.insert("errorLabels", labels);
        }
    }
    reply.insert("ok", 1.0);
    Ok(reply)
}

/// `abortTransaction`.
///
/// # Errors
///
/// `NoSuchTransaction` when the transaction is not open.
pub(super) fn abort(ctx: &Ctx<'_>) -> Result<Document, CommandError> {
    let (lsid, number) = session_txn(ctx)?;
    let mut st = ctx.shared.lock();
    let txn = st.members[ctx.m]
        .transactions
        .get_mut(&lsid)
        .filter(|t| t.txn_number == number);
    match txn {
        Some(t) if t.state == TxnState::Active => t.abort(),
        Some(t) if t.state == TxnState::Committed => {
            return Err(CommandError::new(
                256,
                "TransactionCommitted",
                format!("Transaction {number} has been committed."),
            ));
        }
        _ => {
            return Err(no_such_transaction(format!(
                "Given transaction number {number} does not match any in-progress transactions."
            )));
        }
    }
    drop(st);
    ctx.shared.notify();
    Ok(doc! {"ok": 1.0})
}
