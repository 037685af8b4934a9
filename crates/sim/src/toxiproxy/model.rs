//! Toxics and proxies as the Toxiproxy 2.x HTTP API sees them: the JSON shapes it answers with
//! and the decoding rules of its Go server (defaults, partial updates, error texts).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The direction of a toxic, as Toxiproxy names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → upstream server.
    Upstream,
    /// Upstream server → client (the default).
    Downstream,
}

impl Direction {
    /// Parses a `stream` value the way Toxiproxy does (case-insensitive).
    #[must_use]
    pub fn parse(stream: &str) -> Option<Self> {
        match stream.to_ascii_lowercase().as_str() {
            "upstream" => Some(Self::Upstream),
            "downstream" => Some(Self::Downstream),
            _ => None,
        }
    }
}

/// The effect of a toxic with its attributes, in the units of the Toxiproxy API (milliseconds,
/// KB/s, microseconds for the slicer delay, bytes). Values are Go `int64`s on the wire, so they
/// are kept signed here; the data path treats negative values as zero like Toxiproxy does.
#[derive(Clone, Debug, PartialEq)]
pub enum ToxicKind {
    /// Passes data through unchanged.
    Noop,
    /// Delays every chunk by `latency` ± `jitter` milliseconds.
    Latency {
        /// Milliseconds.
        latency: i64,
        /// Milliseconds.
        jitter: i64,
    },
    /// Limits throughput to `rate` KB/s (0 means unlimited).
    Bandwidth {
        /// KB/s (1 KB = 1000 bytes).
        rate: i64,
    },
    /// Delays the close of the connection by `delay` milliseconds.
    SlowClose {
        /// Milliseconds.
        delay: i64,
    },
    /// Drops all data and closes the connection after `timeout` ms (never when 0).
    Timeout {
        /// Milliseconds.
        timeout: i64,
    },
    /// Resets the connection (TCP RST) `timeout` ms after data arrives.
    ResetPeer {
        /// Milliseconds.
        timeout: i64,
    },
    /// Slices data into smaller chunks with a delay between them.
    Slicer {
        /// Bytes.
        average_size: i64,
        /// Bytes.
        size_variation: i64,
        /// Microseconds.
        delay: i64,
    },
    /// Closes the connection once `bytes` bytes have passed.
    LimitData {
        /// Bytes.
        bytes: i64,
    },
}

impl ToxicKind {
    /// The zero-valued toxic of a registered type, or `None` for an unknown type.
    #[must_use]
    pub fn new(type_name: &str) -> Option<Self> {
        Some(match type_name {
            "noop" => Self::Noop,
            "latency" => Self::Latency {
                latency: 0,
                jitter: 0,
            },
            "bandwidth" => Self::Bandwidth { rate: 0 },
            "slow_close" => Self::SlowClose { delay: 0 },
            "timeout" => Self::Timeout { timeout: 0 },
            "reset_peer" => Self::ResetPeer { timeout: 0 },
            "slicer" => Self::Slicer {
                average_size: 0,
                size_variation: 0,
                delay: 0,
            },
            "limit_data" => Self::LimitData { bytes: 0 },
            _ => return None,
        })
    }

    /// The Go struct name, used in decoding error messages.
    fn go_type(&self) -> &'static str {
        match self {
            Self::Noop => "toxics.NoopToxic",
            Self::Latency { .. } => "toxics.LatencyToxic",
            Self::Bandwidth { .. } => "toxics.BandwidthToxic",
            Self::SlowClose { .. } => "toxics.SlowCloseToxic",
            Self::Timeout { .. } => "toxics.TimeoutToxic",
            Self::ResetPeer { .. } => "toxics.ResetToxic",
            Self::Slicer { .. } => "toxics.SlicerToxic",
            Self::LimitData { .. } => "toxics.LimitDataToxic",
        }
    }

    /// The attribute fields in wire order with mutable access, for decoding.
    fn fields_mut(&mut self) -> Vec<(&'static str, &mut i64)> {
        match self {
            Self::Noop => vec![],
            Self::Latency { latency, jitter } => vec![("latency", latency), ("jitter", jitter)],
            Self::Bandwidth { rate } => vec![("rate", rate)],
            Self::SlowClose { delay } => vec![("delay", delay)],
            Self::Timeout { timeout } | Self::ResetPeer { timeout } => vec![("timeout", timeout)],
            Self::Slicer {
                average_size,
                size_variation,
                delay,
            } => vec![
                ("average_size", average_size),
                ("size_variation", size_variation),
                ("delay", delay),
            ],
            Self::LimitData { bytes } => vec![("bytes", bytes)],
        }
    }

    /// The attribute fields in wire order.
    fn fields(&self) -> Vec<(&'static str, i64)> {
        let mut copy = self.clone();
        copy.fields_mut()
            .into_iter()
            .map(|(k, v)| (k, *v))
            .collect()
    }

    /// Overwrites the attributes present in `attributes` (a JSON object or null), leaving the
    /// others as they are: Go decodes onto the existing struct, which makes PATCH partial.
    ///
    /// # Errors
    ///
    /// A Go-style decoding message when `attributes` or one of its fields has the wrong type.
    pub fn apply_attributes(&mut self, attributes: &Value) -> Result<(), String> {
        let go_type = self.go_type();
        let object = match attributes {
            Value::Null => return Ok(()),
            Value::Object(object) => object,
            other => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field .attributes of type {go_type}",
                    json_kind(other)
                ));
            }
        };
        for (name, slot) in self.fields_mut() {
            match lookup(object, name) {
                None | Some(Value::Null) => {}
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(v) => *slot = v,
                    None => {
                        return Err(format!(
                            "json: cannot unmarshal number {n} into Go struct field {}.attributes.{name} of type int64",
                            go_type.trim_start_matches("toxics.")
                        ));
                    }
                },
                Some(other) => {
                    return Err(format!(
                        "json: cannot unmarshal {} into Go struct field {}.attributes.{name} of type int64",
                        json_kind(other),
                        go_type.trim_start_matches("toxics.")
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Serialize for ToxicKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.fields();
        let mut map = serializer.serialize_map(Some(fields.len()))?;
        for (name, value) in fields {
            map.serialize_entry(name, &value)?;
        }
        map.end()
    }
}

/// One toxic of a proxy, as stored by the server.
#[derive(Clone, Debug, PartialEq)]
pub struct ToxicDef {
    /// Unique within the proxy.
    pub name: String,
    /// The registered type name (`latency`, …).
    pub type_name: String,
    /// The stream as given by the client (Toxiproxy echoes it back unchanged).
    pub stream: String,
    /// Parsed from `stream`.
    pub direction: Direction,
    /// Probability that the toxic applies to a connection (decided per connection).
    pub toxicity: f32,
    /// The effect and its attributes.
    pub kind: ToxicKind,
    /// Changes on every create or update, so connections notice an updated toxic.
    pub revision: u64,
}

/// The wire shape of a toxic: `{"attributes":…,"name":…,"type":…,"stream":…,"toxicity":…}`.
#[derive(Serialize)]
pub struct ToxicJson<'a> {
    attributes: &'a ToxicKind,
    name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    stream: &'a str,
    toxicity: Value,
}

impl<'a> From<&'a ToxicDef> for ToxicJson<'a> {
    fn from(t: &'a ToxicDef) -> Self {
        ToxicJson {
            attributes: &t.kind,
            name: &t.name,
            type_name: &t.type_name,
            stream: &t.stream,
            toxicity: go_float32(t.toxicity),
        }
    }
}

/// The wire shape of a proxy: `{"name","listen","upstream","enabled","toxics":[…]}`.
#[derive(Serialize)]
pub struct ProxyJson<'a> {
    /// Proxy name.
    pub name: &'a str,
    /// Listen address, resolved once the proxy has listened.
    pub listen: &'a str,
    /// Upstream address.
    pub upstream: &'a str,
    /// False when the proxy is down.
    pub enabled: bool,
    /// Upstream toxics first, then downstream ones, each in creation order.
    pub toxics: Vec<ToxicJson<'a>>,
}

/// The toxics of one proxy in chain order per direction. Shared with every connection of the
/// proxy through a watch channel, so a change applies to existing connections too.
#[derive(Clone, Debug, Default)]
pub struct Chains {
    /// Toxics on the client → server stream.
    pub upstream: Vec<Arc<ToxicDef>>,
    /// Toxics on the server → client stream.
    pub downstream: Vec<Arc<ToxicDef>>,
}

impl Chains {
    /// The chain of one direction.
    #[must_use]
    pub fn of(&self, direction: Direction) -> &[Arc<ToxicDef>] {
        match direction {
            Direction::Upstream => &self.upstream,
            Direction::Downstream => &self.downstream,
        }
    }

    /// The chain of one direction, mutable.
    pub fn of_mut(&mut self, direction: Direction) -> &mut Vec<Arc<ToxicDef>> {
        match direction {
            Direction::Upstream => &mut self.upstream,
            Direction::Downstream => &mut self.downstream,
        }
    }

    /// All toxics in the order Toxiproxy lists them.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ToxicDef>> {
        self.upstream.iter().chain(self.downstream.iter())
    }

    /// The toxic called `name`, in either direction.
    #[must_use]
    pub fn find(&self, name: &str) -> Option<&Arc<ToxicDef>> {
        self.iter().find(|t| t.name == name)
    }
}

/// Go encodes a float32 with the shortest representation and no `.0` for whole numbers.
fn go_float32(f: f32) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(f as i64);
    }
    // f32's Display is the shortest string that round-trips; as an f64 it prints the same.
    format!("{f}")
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// A field of a JSON object the way Go's decoder finds it: exact name first, then any
/// case-insensitive match.
#[must_use]
pub fn lookup<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The JSON kind name Go uses in "cannot unmarshal X into …".
#[must_use]
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toxicity_is_encoded_like_go_float32() {
        assert_eq!(go_float32(1.0).to_string(), "1");
        assert_eq!(go_float32(0.0).to_string(), "0");
        assert_eq!(go_float32(0.5).to_string(), "0.5");
        assert_eq!(go_float32(0.1).to_string(), "0.1");
    }

    #[test]
    fn attributes_decode_partially_and_reject_wrong_types() {
        let mut kind = ToxicKind::new("latency").expect("latency is registered");
        kind.apply_attributes(&json!({"latency": 300}))
            .expect("valid");
        kind.apply_attributes(&json!({"Jitter": 20}))
            .expect("valid");
        assert_eq!(
            kind,
            ToxicKind::Latency {
                latency: 300,
                jitter: 20
            }
        );
        assert!(kind.apply_attributes(&json!({"latency": "slow"})).is_err());
        assert!(kind.apply_attributes(&json!({"latency": 1.5})).is_err());
        assert!(kind.apply_attributes(&json!([1])).is_err());
        assert_eq!(
            serde_json::to_string(&kind).expect("serializes"),
            r#"{"latency":300,"jitter":20}"#
        );
    }

    #[test]
    fn unknown_types_are_not_registered() {
        assert!(ToxicKind::new("corrupt_everything").is_none());
        assert!(Direction::parse("UpStream").is_some());
        assert!(Direction::parse("sideways").is_none());
    }
}
