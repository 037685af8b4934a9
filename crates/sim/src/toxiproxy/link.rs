//! The data path: one task per direction of a proxied connection.
//!
//! Instead of Toxiproxy's goroutine per toxic joined by channels, a link computes when each
//! chunk leaves the toxic chain (every toxic is a FIFO stage, so each stage's output time is
//! monotonic) and keeps a queue of chunks with their release times in platform time. With no
//! toxic applied the link copies straight from socket to socket with a 256 KiB buffer.

use super::model::{Chains, Direction, ToxicDef, ToxicKind};
use bytes::{Bytes, BytesMut};
use firedrill_core::clock::{Clock, PlatformTime};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Read size of one chunk; large enough for loopback throughput, the unit toxics work on.
const CHUNK: usize = 256 * 1024;
/// Read-ahead limits of a link whose toxics delay data (Toxiproxy buffers 1024 chunks).
const MAX_QUEUED_CHUNKS: usize = 1024;
const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

/// How a connection ends, ordered by severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloseCmd {
    /// Still open.
    Open,
    /// Stop reading, deliver what is queued, then close.
    Flush,
    /// Close now, dropping queued data (proxy disabled or deleted, peer reset).
    Abort,
}

/// Raises the close command of a connection, never lowering it.
pub fn escalate(tx: &watch::Sender<CloseCmd>, cmd: CloseCmd) {
    tx.send_if_modified(|current| {
        if cmd > *current {
            *current = cmd;
            true
        } else {
            false
        }
    });
}

enum Item {
    Data(Bytes),
    Close,
}

/// What one link remembers about one toxic of its chain.
struct ToxicState {
    def: Arc<ToxicDef>,
    /// Toxicity is rolled once per connection (and again when the toxic is updated).
    applied: bool,
    /// When this stage has finished with the previous chunk.
    busy_until: PlatformTime,
    /// limit_data: bytes let through so far; kept across updates like Toxiproxy's stub state.
    sent: i64,
    /// timeout: when the toxic started acting on this link.
    started: PlatformTime,
    /// timeout/reset_peer: whether it already fired.
    fired: bool,
    /// reset_peer: when the reset happens, once data arrived.
    reset_at: Option<PlatformTime>,
}

/// One direction of a proxied connection.
pub struct Link {
    direction: Direction,
    src: Arc<TcpStream>,
    dst: Arc<TcpStream>,
    chains: watch::Receiver<Arc<Chains>>,
    close_tx: watch::Sender<CloseCmd>,
    close_rx: watch::Receiver<CloseCmd>,
    clock: Clock,
    rng: ChaCha8Rng,
    states: Vec<ToxicState>,
    queue: VecDeque<(PlatformTime, Item)>,
    queued_bytes: usize,
    /// Reading has stopped (end of stream, limit reached, closing).
    eof: bool,
}

fn ms(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}

impl Link {
    /// A link copying `src` to `dst` through the `direction` chain of `chains`.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        direction: Direction,
        src: Arc<TcpStream>,
        dst: Arc<TcpStream>,
        chains: watch::Receiver<Arc<Chains>>,
        close_tx: watch::Sender<CloseCmd>,
        clock: Clock,
        seed: u64,
    ) -> Self {
        let close_rx = close_tx.subscribe();
        Self {
            direction,
            src,
            dst,
            chains,
            close_tx,
            close_rx,
            clock,
            rng: ChaCha8Rng::seed_from_u64(seed),
            states: Vec::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            eof: false,
        }
    }

    /// Runs until the connection is closed.
    pub async fn run(mut self) {
        let now = self.clock.now();
        self.resync(now);
        let mut buf = BytesMut::with_capacity(CHUNK);
        loop {
            let cmd = *self.close_rx.borrow_and_update();
            match cmd {
                CloseCmd::Abort => return,
                CloseCmd::Flush if !self.eof => {
                    let now = self.clock.now();
                    self.on_eof(now);
                }
                _ => {}
            }
            let next = self.next_event();
            let room = self.queue.len() < MAX_QUEUED_CHUNKS && self.queued_bytes < MAX_QUEUED_BYTES;
            let reading = !self.eof && room;
            let clock = self.clock;
            tokio::select! {
                biased;
                changed = self.close_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                changed = self.chains.changed() => {
                    if changed.is_err() {
                        // The proxy is gone (its stop already aborted this connection).
                        return;
                    }
                    let now = self.clock.now();
                    self.resync(now);
                }
                () = clock.sleep_until(next.unwrap_or(PlatformTime::ZERO)), if next.is_some() => {
                    if self.fire_due().await.is_err() {
                        return;
                    }
                }
                ready = self.src.readable(), if reading => {
                    if ready.is_err() {
                        let now = self.clock.now();
                        self.on_eof(now);
                        continue;
                    }
                    if buf.capacity() < CHUNK / 2 {
                        buf.reserve(CHUNK);
                    }
                    match self.src.try_read_buf(&mut buf) {
                        Ok(0) => {
                            let now = self.clock.now();
                            self.on_eof(now);
                        }
                        Ok(_) if self.passthrough() => {
                            let result = self.write_all(&buf).await;
                            buf.clear();
                            if result.is_err() {
                                escalate(&self.close_tx, CloseCmd::Abort);
                                return;
                            }
                        }
                        Ok(_) => {
                            let chunk = buf.split().freeze();
                            let now = self.clock.now();
                            self.push_chunk(now, chunk);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => {
                            // Toxiproxy treats a read error like the end of the stream.
                            let now = self.clock.now();
                            self.on_eof(now);
                        }
                    }
                }
            }
        }
    }

    /// No toxic acts on this link and nothing is in flight: copy directly.
    fn passthrough(&self) -> bool {
        self.queue.is_empty() && self.states.iter().all(|s| !s.applied)
    }

    /// The earliest of the queue head and the timers of timeout and reset_peer toxics.
    fn next_event(&self) -> Option<PlatformTime> {
        let mut next = self.queue.front().map(|(t, _)| *t);
        for s in self.states.iter().filter(|s| s.applied && !s.fired) {
            let due = match s.def.kind {
                ToxicKind::Timeout { timeout } if timeout > 0 => Some(s.started.plus(ms(timeout))),
                ToxicKind::ResetPeer { .. } => s.reset_at,
                _ => None,
            };
            if let Some(due) = due {
                next = Some(next.map_or(due, |n| n.min(due)));
            }
        }
        next
    }

    /// Picks up a changed toxic chain: new or updated toxics roll their toxicity for this
    /// connection and restart their timers; a removed timeout toxic closes the connection
    /// (Toxiproxy's cleanup), and once nothing applies any more, data in flight goes out at once.
    fn resync(&mut self, now: PlatformTime) {
        let chains = self.chains.borrow_and_update().clone();
        let chain = chains.of(self.direction);
        let mut old = std::mem::take(&mut self.states);
        let mut states = Vec::with_capacity(chain.len());
        for def in chain {
            let previous = old
                .iter()
                .position(|s| s.def.name == def.name)
                .map(|i| old.swap_remove(i));
            let state = match previous {
                Some(s) if s.def.revision == def.revision => s,
                previous => ToxicState {
                    def: def.clone(),
                    applied: self.rng.random::<f32>() < def.toxicity,
                    busy_until: previous.as_ref().map_or(now, |p| p.busy_until),
                    sent: previous.as_ref().map_or(0, |p| p.sent),
                    started: now,
                    fired: false,
                    reset_at: None,
                },
            };
            states.push(state);
        }
        self.states = states;
        let removed_timeout = old
            .iter()
            .any(|s| s.applied && !s.fired && matches!(s.def.kind, ToxicKind::Timeout { .. }));
        if removed_timeout && !self.eof {
            self.eof = true;
            self.push(now, Item::Close);
        }
        if !old.is_empty() && self.states.iter().all(|s| !s.applied) {
            for (t, _) in &mut self.queue {
                *t = (*t).min(now);
            }
        }
    }

    /// Runs a chunk read at `now` through the toxic chain and queues what comes out.
    fn push_chunk(&mut self, now: PlatformTime, chunk: Bytes) {
        let mut items = vec![(now, chunk)];
        let mut close_at = None;
        for state in self.states.iter_mut().filter(|s| s.applied) {
            if items.is_empty() {
                break;
            }
            items = apply(state, &mut self.rng, items, &mut close_at);
        }
        for (t, data) in items {
            self.push(t, Item::Data(data));
        }
        if let Some(t) = close_at {
            self.eof = true;
            self.push(t, Item::Close);
        }
    }

    /// The source ended (or the connection is closing): close after what is queued, later by
    /// the delay of slow_close toxics; a reset_peer toxic resets instead.
    fn on_eof(&mut self, now: PlatformTime) {
        if self.eof {
            return;
        }
        self.eof = true;
        let mut t = self.queue.back().map_or(now, |(b, _)| (*b).max(now));
        for state in self.states.iter_mut().filter(|s| s.applied) {
            match state.def.kind {
                ToxicKind::SlowClose { delay } => t = t.plus(ms(delay)),
                ToxicKind::ResetPeer { timeout } if state.reset_at.is_none() => {
                    state.reset_at = Some(t.plus(ms(timeout)));
                    return;
                }
                ToxicKind::ResetPeer { .. } => return,
                ToxicKind::Timeout { .. } => break,
                _ => {}
            }
        }
        self.push(t, Item::Close);
    }

    fn push(&mut self, t: PlatformTime, item: Item) {
        // TCP is a FIFO: nothing may overtake what is already queued.
        let t = self.queue.back().map_or(t, |(b, _)| t.max(*b));
        if let Item::Data(d) = &item {
            self.queued_bytes += d.len();
        }
        self.queue.push_back((t, item));
    }

    /// Delivers every queued item that is due and fires due timers.
    async fn fire_due(&mut self) -> Result<(), ()> {
        let now = self.clock.now();
        for i in 0..self.states.len() {
            let state = &mut self.states[i];
            if !state.applied || state.fired {
                continue;
            }
            match state.def.kind {
                ToxicKind::Timeout { timeout }
                    if timeout > 0 && state.started.plus(ms(timeout)) <= now =>
                {
                    state.fired = true;
                    if !self.eof {
                        self.eof = true;
                        self.push(now, Item::Close);
                    }
                }
                ToxicKind::ResetPeer { .. } if state.reset_at.is_some_and(|t| t <= now) => {
                    state.fired = true;
                    self.reset();
                    return Err(());
                }
                _ => {}
            }
        }
        while let Some((t, _)) = self.queue.front() {
            if *t > self.clock.now() {
                break;
            }
            match self.queue.pop_front() {
                Some((_, Item::Data(data))) => {
                    self.queued_bytes -= data.len();
                    if self.write_all(&data).await.is_err() {
                        escalate(&self.close_tx, CloseCmd::Abort);
                        return Err(());
                    }
                }
                Some((_, Item::Close)) => {
                    escalate(&self.close_tx, CloseCmd::Flush);
                    return Err(());
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Resets both sockets: SO_LINGER 0 makes the close send RST instead of FIN.
    fn reset(&self) {
        if let Err(e) = self
            .src
            .set_zero_linger()
            .and_then(|()| self.dst.set_zero_linger())
        {
            tracing::warn!(error = %e, "could not set SO_LINGER 0 for reset_peer");
        }
        escalate(&self.close_tx, CloseCmd::Abort);
    }

    /// Writes all of `data`, giving up when the connection is aborted.
    async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            match self.dst.try_write(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    tokio::select! {
                        ready = self.dst.writable() => ready?,
                        changed = self.close_rx.changed() => {
                            if changed.is_err() || *self.close_rx.borrow() == CloseCmd::Abort {
                                return Err(io::ErrorKind::ConnectionAborted.into());
                            }
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// One toxic stage applied to the chunks coming out of the previous stage.
fn apply(
    state: &mut ToxicState,
    rng: &mut ChaCha8Rng,
    items: Vec<(PlatformTime, Bytes)>,
    close_at: &mut Option<PlatformTime>,
) -> Vec<(PlatformTime, Bytes)> {
    match state.def.kind {
        ToxicKind::Noop | ToxicKind::SlowClose { .. } => items,
        ToxicKind::Latency { latency, jitter } => items
            .into_iter()
            .map(|(t, data)| {
                let mut delay = latency;
                if jitter > 0 {
                    delay += rng.random_range(0..jitter.saturating_mul(2)) - jitter;
                }
                let out = t.plus(ms(delay)).max(state.busy_until);
                state.busy_until = out;
                (out, data)
            })
            .collect(),
        ToxicKind::Bandwidth { rate } if rate <= 0 => items,
        ToxicKind::Bandwidth { rate } => {
            // Like Toxiproxy, big chunks go out in pieces of 100 ms worth of data.
            let piece = usize::try_from(rate.saturating_mul(100))
                .unwrap_or(usize::MAX)
                .max(1);
            let per_byte_ns = 1_000_000.0 / rate as f64;
            let mut out = Vec::new();
            for (t, mut data) in items {
                while !data.is_empty() {
                    let part = data.split_to(piece.min(data.len()));
                    let start = t.max(state.busy_until);
                    let done = start.plus(Duration::from_nanos(
                        (part.len() as f64 * per_byte_ns) as u64,
                    ));
                    state.busy_until = done;
                    out.push((done, part));
                }
            }
            out
        }
        ToxicKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => {
            let step = Duration::from_micros(u64::try_from(delay).unwrap_or(0));
            let mut out = Vec::new();
            for (t, data) in items {
                let mut at = t.max(state.busy_until);
                let mut cuts = Vec::new();
                slice_points(
                    rng,
                    0,
                    data.len(),
                    average_size.max(1),
                    size_variation.max(0),
                    &mut cuts,
                );
                let mut start = 0;
                for end in cuts {
                    out.push((at, data.slice(start..end)));
                    start = end;
                    at = at.plus(step);
                }
                state.busy_until = at;
            }
            out
        }
        ToxicKind::LimitData { bytes } => {
            let mut out = Vec::new();
            for (t, mut data) in items {
                let remaining = usize::try_from(bytes.saturating_sub(state.sent)).unwrap_or(0);
                data.truncate(remaining);
                if !data.is_empty() {
                    state.sent += data.len() as i64;
                    out.push((t, data));
                }
                if state.sent >= bytes {
                    *close_at = Some(t);
                    break;
                }
            }
            out
        }
        ToxicKind::Timeout { .. } => Vec::new(),
        ToxicKind::ResetPeer { timeout } => {
            if state.reset_at.is_none() {
                state.reset_at = items.first().map(|(t, _)| t.plus(ms(timeout)));
            }
            Vec::new()
        }
    }
}

/// Toxiproxy's slicer: split `start..end` in about two (± variation) until pieces are within
/// `variation` of the average size; pushes the end offsets of the pieces in order.
fn slice_points(
    rng: &mut ChaCha8Rng,
    start: usize,
    end: usize,
    average: i64,
    variation: i64,
    cuts: &mut Vec<usize>,
) {
    let len = (end - start) as i64;
    if len - average <= variation || len < 2 {
        cuts.push(end);
        return;
    }
    let offset = if variation > 0 {
        rng.random_range(0..variation * 2) - variation
    } else {
        0
    };
    let mid = (start as i64 + len / 2 + offset).clamp(start as i64 + 1, end as i64 - 1) as usize;
    slice_points(rng, start, mid, average, variation, cuts);
    slice_points(rng, mid, end, average, variation, cuts);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_whole_chunk_in_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut cuts = Vec::new();
        slice_points(&mut rng, 0, 10_000, 100, 20, &mut cuts);
        assert_eq!(cuts.last(), Some(&10_000));
        assert!(
            cuts.windows(2).all(|w| w[0] < w[1]),
            "cuts not increasing: {cuts:?}"
        );
        let mut start = 0;
        for end in &cuts {
            assert!(end - start <= 120 + 1, "piece {start}..{end} too big");
            start = *end;
        }
    }
}
