//! How a Toxiproxy fault is taken back, as the ledger stores it.
//!
//! An undo names the link, the proxy and the toxic by reference, never the server's address:
//! the URL is resolved against the platform at undo time (it may come from `${ENV}`), so
//! `firedrill recover` reaches the server even when it moved. It removes exactly what the drill
//! added — one toxic by its unique name, or the enabling of a proxy the drill disabled — and
//! never calls `POST /reset`, which would wipe everyone else's toxics.

use serde::{Deserialize, Serialize};

use super::{Error, client_for};
use firedrill_platform::Platform;

/// Takes one Toxiproxy change back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ToxiproxyUndo {
    /// The link (a key of `toxiproxy.links`), for messages.
    pub link: String,
    /// The proxy's name on the server.
    pub proxy: String,
    /// What to take back.
    pub action: Action,
}

/// The change to take back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// Remove the toxic this drill added (its name is unique to the drill).
    RemoveToxic {
        /// The toxic's name.
        toxic: String,
    },
    /// Enable the proxy this drill disabled.
    Enable,
}

impl ToxiproxyUndo {
    /// One line for plans, logs and reports.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.action {
            Action::RemoveToxic { toxic } => format!(
                "remove toxic \"{toxic}\" from proxy \"{}\" (link \"{}\")",
                self.proxy, self.link
            ),
            Action::Enable => format!(
                "enable proxy \"{}\" again (link \"{}\")",
                self.proxy, self.link
            ),
        }
    }

    /// Applies the undo against the Toxiproxy of `platform`. Idempotent: a toxic already gone
    /// (or whose proxy is gone with it) and a proxy already enabled count as undone.
    ///
    /// # Errors
    ///
    /// [`Error::NotConfigured`] when the platform has no `toxiproxy` section; the client's
    /// errors when the server is unreachable or the change does not read back.
    pub async fn apply(&self, platform: &Platform) -> Result<(), Error> {
        let client = client_for(platform, &self.link)?;
        match &self.action {
            Action::RemoveToxic { toxic } => match client.remove_toxic(&self.proxy, toxic).await {
                // A proxy that no longer exists holds no toxic either.
                Ok(_) | Err(Error::ProxyNotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            },
            Action::Enable => client.set_enabled(&self.proxy, true).await.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxiproxy::{Stream, ToxicKind, ToxicSpec, ToxiproxyClient};
    use firedrill_core::clock::Clock;
    use std::net::SocketAddr;
    use std::time::Duration;

    fn platform(url: &str) -> Platform {
        let yaml = format!(
            "name: t\nregions:\n  a: {{ role: primary }}\n  b: {{ role: failover }}\ntoxiproxy:\n  url: {url}\n  links:\n    l: {{ proxy: p }}\n"
        );
        firedrill_platform::load_str(std::path::Path::new("t.yaml"), &yaml, &|_| None)
            .unwrap_or_else(|p| panic!("platform: {p}"))
    }

    #[test]
    fn the_ledger_form_names_the_link_proxy_and_toxic() {
        let undo = ToxiproxyUndo {
            link: "l".into(),
            proxy: "p".into(),
            action: Action::RemoveToxic {
                toxic: "firedrill-r-1-latency".into(),
            },
        };
        let json = serde_json::to_value(&undo).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"link": "l", "proxy": "p", "action": {"kind": "remove-toxic", "toxic": "firedrill-r-1-latency"}})
        );
        assert_eq!(
            serde_json::from_value::<ToxiproxyUndo>(json).expect("back"),
            undo
        );
    }

    #[tokio::test]
    async fn undo_twice_succeeds_and_leaves_the_other_toxics() {
        let server =
            firedrill_sim::toxiproxy::start(SocketAddr::from(([127, 0, 0, 1], 0)), Clock::real())
                .await
                .expect("server");
        server
            .create_proxy("p", "127.0.0.1:0", "127.0.0.1:9")
            .await
            .expect("proxy");
        let client = ToxiproxyClient::new(&server.url()).expect("client");
        for name in ["mine", "theirs"] {
            client
                .add_toxic(
                    "p",
                    &ToxicSpec::new(
                        name,
                        Stream::Downstream,
                        ToxicKind::latency(Duration::from_millis(100), Duration::ZERO),
                    ),
                )
                .await
                .expect("toxic");
        }
        client.set_enabled("p", false).await.expect("disable");
        let platform = platform(&server.url());
        let remove = ToxiproxyUndo {
            link: "l".into(),
            proxy: "p".into(),
            action: Action::RemoveToxic {
                toxic: "mine".into(),
            },
        };
        let enable = ToxiproxyUndo {
            link: "l".into(),
            proxy: "p".into(),
            action: Action::Enable,
        };
        for round in 0..2 {
            remove
                .apply(&platform)
                .await
                .unwrap_or_else(|e| panic!("remove #{round}: {e}"));
            enable
                .apply(&platform)
                .await
                .unwrap_or_else(|e| panic!("enable #{round}: {e}"));
        }
        let state = client.proxy("p").await.expect("read");
        assert!(state.enabled);
        assert_eq!(
            state
                .toxics
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["theirs"]
        );
        // A toxic on a proxy that is gone is gone too.
        let gone = ToxiproxyUndo {
            link: "l".into(),
            proxy: "deleted".into(),
            action: Action::RemoveToxic {
                toxic: "mine".into(),
            },
        };
        gone.apply(&platform).await.expect("moot undo");
        server.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_an_error_naming_it() {
        let platform = platform("http://127.0.0.1:9");
        let undo = ToxiproxyUndo {
            link: "l".into(),
            proxy: "p".into(),
            action: Action::Enable,
        };
        let err = undo
            .apply(&platform)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("127.0.0.1:9") && err.contains("unreachable"),
            "{err}"
        );
    }
}
