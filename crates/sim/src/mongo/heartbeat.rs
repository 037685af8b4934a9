//! Heartbeats over TCP to a member's advertised address, for members reached through a proxy
//! (a Toxiproxy link in front of the member): when the proxy cuts the link, the other members'
//! heartbeats fail and the member is, to them, partitioned away — as a real replica set sees
//! a member whose network path is cut. Members reached at their own port need no heartbeat:
//! the model knows they are reachable.

use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::server::Shared;
use super::wire::OP_MSG;

/// `settings.heartbeatIntervalMillis`: MongoDB's default 2 s, in platform time.
const INTERVAL: Duration = Duration::from_secs(2);
/// How long one heartbeat may take before it counts as failed (platform time). MongoDB waits
/// `heartbeatTimeoutSecs` (10 s), but the model's election timeout already runs from the last
/// contact, so a shorter wait only makes the cut seen at the next heartbeat.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Wall-time floors: on a compressed clock a heartbeat every few wall milliseconds would be
/// the busiest client of the platform, and a loaded machine would turn scheduling delays into
/// false cuts.
const WALL_INTERVAL_FLOOR: Duration = Duration::from_millis(20);
const WALL_TIMEOUT_FLOOR: Duration = Duration::from_millis(250);
/// The largest reply a heartbeat accepts (a hello reply is a few hundred bytes).
const MAX_REPLY: usize = 1 << 20;

/// Heartbeats member `m` at `addr` forever, marking its link down while they fail.
pub(crate) async fn watch(shared: Arc<Shared>, m: usize, addr: String) {
    let clock = shared.clock;
    let mut ticks = tokio::time::interval(clock.to_wall(INTERVAL).max(WALL_INTERVAL_FLOOR));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let patience = clock.to_wall(TIMEOUT).max(WALL_TIMEOUT_FLOOR);
    let mut connection: Option<TcpStream> = None;
    let mut request_id: i32 = 0;
    loop {
        ticks.tick().await;
        request_id = request_id.wrapping_add(1);
        let answered = tokio::time::timeout(patience, async {
            if connection.is_none() {
                connection = Some(TcpStream::connect(addr.as_str()).await?);
            }
            match connection.as_mut() {
                Some(stream) => hello(stream, request_id).await,
                None => Ok(()),
            }
        })
        .await;
        let up = matches!(answered, Ok(Ok(())));
        if !up {
            // A held or broken connection is not reused: the next heartbeat dials again.
            connection = None;
        }
        let changed = {
            let mut st = shared.lock();
            let was_down = st.members[m].link_down;
            st.members[m].link_down = !up;
            if was_down == up {
                st.bump_all();
                true
            } else {
                false
            }
        };
        if changed {
            tracing::info!(member = m, %addr, up, "heartbeat link changed");
            shared.notify();
        }
    }
}

/// One `hello` round trip on `stream`.
async fn hello(stream: &mut TcpStream, request_id: i32) -> std::io::Result<()> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&0u32.to_le_bytes());
    body.push(0);
    doc! {"hello": 1, "$db": "admin"}
        .to_writer(&mut body)
        .map_err(std::io::Error::other)?;
    let total = i32::try_from(16 + body.len()).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(16 + body.len());
    frame.extend_from_slice(&total.to_le_bytes());
    frame.extend_from_slice(&request_id.to_le_bytes());
    frame.extend_from_slice(&0i32.to_le_bytes());
    frame.extend_from_slice(&OP_MSG.to_le_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await?;
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await?;
    let length = usize::try_from(i32::from_le_bytes(length)).unwrap_or(0);
    if !(16..=MAX_REPLY).contains(&length) {
        return Err(std::io::Error::other("malformed heartbeat reply"));
    }
    let mut rest = vec![0u8; length - 4];
    stream.read_exact(&mut rest).await?;
    Ok(())
}
