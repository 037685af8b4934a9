//! MongoDB wire-protocol framing: OP_MSG (with kind-1 document sequences) and the legacy
//! OP_QUERY / OP_REPLY pair that older handshakes (pymongo's first `isMaster`) still use.

use bson::Document;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// `OP_REPLY`: the answer to a legacy `OP_QUERY`.
pub(crate) const OP_REPLY: i32 = 1;
/// `OP_QUERY`: legacy query, only used for the first handshake by some drivers.
pub(crate) const OP_QUERY: i32 = 2004;
/// `OP_MSG`: every modern command.
pub(crate) const OP_MSG: i32 = 2013;

/// OP_MSG flag: a CRC-32C checksum trails the message.
const CHECKSUM_PRESENT: u32 = 1;
/// OP_MSG flag: the sender expects no reply (unacknowledged write).
const MORE_TO_COME: u32 = 1 << 1;

/// The largest message we accept; the same figure the hello reply advertises.
pub(crate) const MAX_MESSAGE_SIZE: i32 = 48_000_000;

/// The largest document the server reads off the wire (16 MiB of user data plus 16 KiB for the
/// command around it, as the real server's `BSONObjMaxInternalSize`).
pub(crate) const MAX_INTERNAL_DOCUMENT: usize = 16 * 1024 * 1024 + 16 * 1024;

/// A malformed or unsupported message. The connection is closed after it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// The peer closed or the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// A length field outside the protocol's bounds.
    #[error("message length {0} is out of bounds (max {MAX_MESSAGE_SIZE})")]
    Length(i32),
    /// A BSON document that does not parse.
    #[error("malformed BSON document: {0}")]
    Bson(#[from] bson::de::Error),
    /// A BSON document that does not serialize.
    #[error("cannot encode BSON reply: {0}")]
    Encode(#[from] bson::ser::Error),
    /// A structural error in a section or header.
    #[error("malformed {op} message: {what}")]
    Malformed {
        /// The opcode being parsed.
        op: &'static str,
        /// What was wrong.
        what: &'static str,
    },
    /// An opcode we do not speak (OP_COMPRESSED and friends).
    #[error("unsupported opcode {0} (hint: disable compression in the client)")]
    Opcode(i32),
}

/// One request as the command layer sees it.
#[derive(Debug)]
pub(crate) struct Request {
    /// requestID of the message, echoed as responseTo.
    pub request_id: i32,
    /// The command document, with kind-1 sequences folded in as arrays.
    pub command: Document,
    /// How to frame the answer.
    pub kind: RequestKind,
    /// The size of a document in it larger than [`MAX_INTERNAL_DOCUMENT`], which the server
    /// refuses instead of running the command.
    pub oversized: Option<usize>,
}

/// How a request arrived, which decides how (and whether) it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// OP_MSG expecting a reply.
    Msg,
    /// OP_MSG with moreToCome: no reply is sent.
    MsgNoReply,
    /// Legacy OP_QUERY on `db.$cmd`.
    Query,
}

/// Reads one message. `Ok(None)` means the peer closed the connection cleanly.
pub(crate) async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<Option<Request>, WireError> {
    let mut header = [0u8; 16];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let length = i32_at(&header, 0);
    if !(16..=MAX_MESSAGE_SIZE).contains(&length) {
        return Err(WireError::Length(length));
    }
    let request_id = i32_at(&header, 4);
    let op_code = i32_at(&header, 12);
    let mut body = vec![0u8; (length - 16) as usize];
    reader.read_exact(&mut body).await?;
    match op_code {
        OP_MSG => parse_msg(request_id, &body).map(Some),
        OP_QUERY => parse_query(request_id, &body).map(Some),
        other => Err(WireError::Opcode(other)),
    }
}

fn i32_at(bytes: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    i32::from_le_bytes(b)
}

fn parse_msg(request_id: i32, body: &[u8]) -> Result<Request, WireError> {
    let malformed = |what| WireError::Malformed { op: "OP_MSG", what };
    if body.len() < 5 {
        return Err(malformed("too short"));
    }
    let flags = i32_at(body, 0) as u32;
    let mut end = body.len();
    if flags & CHECKSUM_PRESENT != 0 {
        end = end.checked_sub(4).ok_or(malformed("checksum missing"))?;
    }
    let mut at = 4;
    let mut command: Option<Document> = None;
    let mut sequences: Vec<(String, Vec<bson::Bson>)> = Vec::new();
    let mut oversized = None;
    while at < end {
        let kind = body[at];
        at += 1;
        match kind {
            0 => {
                let len = doc_len(body, at, end).ok_or(malformed("section 0 length"))?;
                if len > MAX_INTERNAL_DOCUMENT {
                    oversized = Some(len);
                }
                command = Some(Document::from_reader(&body[at..at + len])?);
                at += len;
            }
            1 => {
                if at + 4 > end {
                    return Err(malformed("section 1 length"));
                }
                let size = i32_at(body, at);
                let section_end = at
                    .checked_add(usize::try_from(size).map_err(|_| malformed("section 1 size"))?)
                    .filter(|e| *e <= end)
                    .ok_or(malformed("section 1 size"))?;
                let mut p = at + 4;
                let nul = body[p..section_end]
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or(malformed("section 1 identifier"))?;
                let ident = String::from_utf8_lossy(&body[p..p + nul]).into_owned();
                p += nul + 1;
                let mut docs = Vec::new();
                while p < section_end {
                    let len =
                        doc_len(body, p, section_end).ok_or(malformed("sequence document"))?;
                    if len > MAX_INTERNAL_DOCUMENT {
                        oversized = Some(len);
                    }
                    docs.push(bson::Bson::Document(Document::from_reader(
                        &body[p..p + len],
                    )?));
                    p += len;
                }
                sequences.push((ident, docs));
                at = section_end;
            }
            _ => return Err(malformed("unknown section kind")),
        }
    }
    let mut command = command.ok_or(malformed("no body section"))?;
    for (ident, docs) in sequences {
        command.insert(ident, docs);
    }
    let kind = if flags & MORE_TO_COME != 0 {
        RequestKind::MsgNoReply
    } else {
        RequestKind::Msg
    };
    Ok(Request {
        request_id,
        command,
        kind,
        oversized,
    })
}

fn doc_len(body: &[u8], at: usize, end: usize) -> Option<usize> {
    if at + 4 > end {
        return None;
    }
    let len = usize::try_from(i32_at(body, at)).ok()?;
    (len >= 5 && at + len <= end).then_some(len)
}

fn parse_query(request_id: i32, body: &[u8]) -> Result<Request, WireError> {
    let malformed = |what| WireError::Malformed {
        op: "OP_QUERY",
        what,
    };
    if body.len() < 4 {
        return Err(malformed("too short"));
    }
    let mut at = 4;
    let nul = body[at..]
        .iter()
        .position(|b| *b == 0)
        .ok_or(malformed("collection name"))?;
    let collection = String::from_utf8_lossy(&body[at..at + nul]).into_owned();
    at += nul + 1 + 8; // numberToSkip, numberToReturn
    let len = doc_len(body, at, body.len()).ok_or(malformed("query document"))?;
    let mut query = Document::from_reader(&body[at..at + len])?;
    // Legacy wrapping: {$query: {...}, $readPreference: ...}.
    if let Ok(inner) = query.get_document("$query") {
        query = inner.clone();
    }
    let db = collection.split('.').next().unwrap_or("admin").to_owned();
    query.insert("$db", db);
    Ok(Request {
        request_id,
        command: query,
        kind: RequestKind::Query,
        oversized: None,
    })
}

/// Writes the reply to `request` framed the way the request came in.
pub(crate) async fn write_reply<W: AsyncWrite + Unpin>(
    writer: &mut W,
    response_id: i32,
    request: &Request,
    reply: &Document,
) -> Result<(), WireError> {
    let mut doc = Vec::with_capacity(256);
    reply.to_writer(&mut doc)?;
    let mut out = Vec::with_capacity(doc.len() + 40);
    let (op, prefix): (i32, Vec<u8>) = match request.kind {
        RequestKind::MsgNoReply => return Ok(()),
        RequestKind::Msg => (OP_MSG, {
            let mut p = 0u32.to_le_bytes().to_vec();
            p.push(0);
            p
        }),
        RequestKind::Query => (OP_REPLY, {
            let mut p = Vec::with_capacity(20);
            p.extend_from_slice(&0i32.to_le_bytes()); // responseFlags
            p.extend_from_slice(&0i64.to_le_bytes()); // cursorID
            p.extend_from_slice(&0i32.to_le_bytes()); // startingFrom
            p.extend_from_slice(&1i32.to_le_bytes()); // numberReturned
            p
        }),
    };
    let total = 16 + prefix.len() + doc.len();
    let total = i32::try_from(total).map_err(|_| WireError::Length(i32::MAX))?;
    out.extend_from_slice(&total.to_le_bytes());
    out.extend_from_slice(&response_id.to_le_bytes());
    out.extend_from_slice(&request.request_id.to_le_bytes());
    out.extend_from_slice(&op.to_le_bytes());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(&doc);
    writer.write_all(&out).await?;
    writer.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    fn frame(op: i32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((16 + body.len()) as i32).to_le_bytes());
        out.extend_from_slice(&7i32.to_le_bytes());
        out.extend_from_slice(&0i32.to_le_bytes());
        out.extend_from_slice(&op.to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    #[tokio::test]
    async fn folds_document_sequences_into_the_command() {
        let mut body = 0u32.to_le_bytes().to_vec();
        body.push(0);
        doc! {"insert": "c", "$db": "d"}
            .to_writer(&mut body)
            .expect("encode");
        let mut seq = b"documents\0".to_vec();
        doc! {"_id": 1}.to_writer(&mut seq).expect("encode");
        doc! {"_id": 2}.to_writer(&mut seq).expect("encode");
        body.push(1);
        body.extend_from_slice(&((seq.len() + 4) as i32).to_le_bytes());
        body.extend_from_slice(&seq);
        let bytes = frame(OP_MSG, &body);
        let req = read_request(&mut &bytes[..])
            .await
            .expect("parse")
            .expect("a message");
        assert_eq!(req.request_id, 7);
        assert_eq!(req.kind, RequestKind::Msg);
        let docs = req
            .command
            .get_array("documents")
            .expect("sequence folded in");
        assert_eq!(docs.len(), 2);
    }

    #[tokio::test]
    async fn parses_a_legacy_ismaster_query() {
        let mut body = 0i32.to_le_bytes().to_vec();
        body.extend_from_slice(b"admin.$cmd\0");
        body.extend_from_slice(&0i32.to_le_bytes());
        body.extend_from_slice(&(-1i32).to_le_bytes());
        doc! {"isMaster": 1, "helloOk": true}
            .to_writer(&mut body)
            .expect("encode");
        let bytes = frame(OP_QUERY, &body);
        let req = read_request(&mut &bytes[..])
            .await
            .expect("parse")
            .expect("a message");
        assert_eq!(req.kind, RequestKind::Query);
        assert_eq!(req.command.get_str("$db").expect("db"), "admin");
        let mut out = Vec::new();
        write_reply(&mut out, 9, &req, &doc! {"ok": 1.0})
            .await
            .expect("write");
        assert_eq!(i32_at(&out, 12), OP_REPLY);
        assert_eq!(i32_at(&out, 8), 7, "responseTo echoes the request id");
    }
}
