//! Authentication as Atlas does it: HTTP digest (RFC 2617, MD5, `qop="auth"`) for programmatic
//! API keys, with short-lived nonces and nonce counts that must grow, and bearer tokens from the
//! OAuth 2.0 client-credentials endpoint for service accounts. Both name an identity with
//! project roles.
//!
//! The digest response is computed here from the RFC, independently of any client library, so
//! a client that gets it wrong is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use md5::{Digest as _, Md5};
use rand::RngCore as _;

/// The realm Atlas's digest challenge names.
pub const REALM: &str = "MMS Public API";

/// How long a nonce may be answered (wall time).
const NONCE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// How long a service account's token lives: `expires_in` (wall seconds, as on Atlas).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Someone the API knows, with their project roles (`GROUP_OWNER`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The API key's public key, or the service account's client id.
    pub name: String,
    /// Project roles.
    pub roles: Vec<String>,
}

/// A programmatic API key.
#[derive(Clone)]
pub struct ApiKey {
    /// The public key (digest user name).
    pub public: String,
    /// The private key (digest password).
    pub private: String,
    /// Its project roles.
    pub roles: Vec<String>,
}

/// A service account.
#[derive(Clone)]
pub struct ServiceAccount {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub secret: String,
    /// Its project roles.
    pub roles: Vec<String>,
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No or unreadable credentials: answer with a fresh challenge.
    Challenge {
        /// The nonce was known but too old (`stale=true`: the client retries with the new one).
        stale: bool,
    },
    /// Credentials that do not match.
    Wrong,
}

/// The API's credentials and the nonces and tokens it handed out.
pub struct Auth {
    keys: Vec<ApiKey>,
    accounts: Vec<ServiceAccount>,
    /// nonce → (issued at, highest nonce count seen).
    nonces: Mutex<HashMap<String, (Instant, u64)>>,
    /// token → (identity, expires at).
    tokens: Mutex<HashMap<String, (Identity, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn hex_md5(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `key="value"` pairs of a digest `Authorization` header (after `Digest `).
fn digest_params(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.trim().strip_prefix("Digest")?.trim();
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            v
        } else {
            chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_owned()
        };
        out.insert(key.trim().to_ascii_lowercase(), value);
    }
    Some(out)
}

impl Auth {
    /// An API knowing `keys` and `accounts`.
    #[must_use]
    pub fn new(keys: Vec<ApiKey>, accounts: Vec<ServiceAccount>) -> Self {
        Self {
            keys,
            accounts,
            nonces: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// A `WWW-Authenticate` value with a fresh nonce.
    #[must_use]
    pub fn challenge(&self, stale: bool) -> String {
        let nonce = random_hex(16);
        let now = Instant::now();
        let mut nonces = lock(&self.nonces);
        nonces.retain(|_, (issued, _)| now.duration_since(*issued) < NONCE_LIFETIME * 2);
        nonces.insert(nonce.clone(), (now, 0));
        format!(
            "Digest realm=\"{REALM}\", domain=\"\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\", stale={stale}"
        )
    }

    /// Who sent a request with this `Authorization` header, for `method` and `uri` (the request
    /// target as sent: path and query).
    ///
    /// # Errors
    ///
    /// [`Refusal`]: answer 401 (with a challenge for digest).
    pub fn identify(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri: &str,
    ) -> Result<Identity, Refusal> {
        let Some(header) = authorization else {
            return Err(Refusal::Challenge { stale: false });
        };
        if let Some(token) = header.trim().strip_prefix("Bearer ") {
            let tokens = lock(&self.tokens);
            return match tokens.get(token.trim()) {
                Some((identity, expires)) if Instant::now() < *expires => Ok(identity.clone()),
                _ => Err(Refusal::Wrong),
            };
        }
        let params = digest_params(header).ok_or(Refusal::Challenge { stale: false })?;
        let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
        let key = self
            .keys
            .iter()
            .find(|k| k.public == get("username"))
            .ok_or(Refusal::Wrong)?;
        if get("realm") != REALM || get("uri") != uri || get("qop") != "auth" {
            return Err(Refusal::Wrong);
        }
        if !matches!(get("algorithm"), "" | "MD5") {
            return Err(Refusal::Wrong);
        }
        let nc = u64::from_str_radix(get("nc"), 16).map_err(|_| Refusal::Wrong)?;
        {
            let mut nonces = lock(&self.nonces);
            let Some((issued, seen)) = nonces.get_mut(get("nonce")) else {
                return Err(Refusal::Challenge { stale: true });
            };
            if issued.elapsed() > NONCE_LIFETIME {
                return Err(Refusal::Challenge { stale: true });
            }
            // A nonce count that does not grow is a replayed request.
            if nc <= *seen {
                return Err(Refusal::Wrong);
            }
            *seen = nc;
        }
        let ha1 = hex_md5(&format!("{}:{REALM}:{}", key.public, key.private));
        let ha2 = hex_md5(&format!("{method}:{uri}"));
        let expected = hex_md5(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            get("nonce"),
            get("nc"),
            get("cnonce")
        ));
        if expected == get("response") {
            Ok(Identity {
                name: key.public.clone(),
                roles: key.roles.clone(),
            })
        } else {
            Err(Refusal::Wrong)
        }
    }

    /// The token endpoint: `Authorization: Basic base64(id:secret)` and
    /// `grant_type=client_credentials` give a bearer token.
    ///
    /// # Errors
    ///
    /// [`Refusal::Wrong`] for unknown credentials or another grant type.
    pub fn issue_token(
        &self,
        authorization: Option<&str>,
        form: &str,
    ) -> Result<(String, Duration), Refusal> {
        if !form
            .split('&')
            .any(|pair| pair.trim() == "grant_type=client_credentials")
        {
            return Err(Refusal::Wrong);
        }
        let encoded = authorization
            .and_then(|h| h.trim().strip_prefix("Basic "))
            .ok_or(Refusal::Wrong)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(Refusal::Wrong)?;
        let (id, secret) = decoded.split_once(':').ok_or(Refusal::Wrong)?;
        let account = self
            .accounts
            .iter()
            .find(|a| a.client_id == id && a.secret == secret)
            .ok_or(Refusal::Wrong)?;
        let token = random_hex(32);
        lock(&self.tokens).insert(
            token.clone(),
            (
                Identity {
                    name: account.client_id.clone(),
                    roles: account.roles.clone(),
                },
                Instant::now() + TOKEN_LIFETIME,
            ),
        );
        Ok((token, TOKEN_LIFETIME))
    }

    /// The API keys (for the project's access list).
    #[must_use]
    pub fn keys(&self) -> &[ApiKey] {
        &self.keys
    }

    /// The service accounts.
    #[must_use]
    pub fn accounts(&self) -> &[ServiceAccount] {
        &self.accounts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new(
            vec![ApiKey {
                public: "Mufasa".into(),
                private: "Circle Of Life".into(),
                roles: vec!["GROUP_OWNER".into()],
            }],
            vec![],
        )
    }

    fn nonce_of(challenge: &str) -> String {
        digest_params(challenge)
            .and_then(|p| p.get("nonce").cloned())
            .unwrap_or_default()
    }

    fn answer(nonce: &str, nc: &str, uri: &str, password: &str) -> String {
        let ha1 = hex_md5(&format!("Mufasa:{REALM}:{password}"));
        let ha2 = hex_md5(&format!("GET:{uri}"));
        let response = hex_md5(&format!("{ha1}:{nonce}:{nc}:0a4f113b:auth:{ha2}"));
        format!(
            "Digest username=\"Mufasa\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"0a4f113b\", response=\"{response}\""
        )
    }

    #[test]
    fn the_rfc_2617_example_digest_is_computed_as_the_rfc_says() {
        // RFC 2617 §3.5 (there with qop=auth and realm testrealm@host.com).
        let ha1 = hex_md5("Mufasa:testrealm@host.com:Circle Of Life");
        let ha2 = hex_md5("GET:/dir/index.html");
        let response = hex_md5(&format!(
            "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
        ));
        assert_eq!(response, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn a_digest_answer_is_accepted_once_per_nonce_count_and_a_wrong_one_never() {
        let auth = auth();
        let nonce = nonce_of(&auth.challenge(false));
        let uri = "/api/atlas/v2/groups/x/clusters/c";
        let ok = answer(&nonce, "00000001", uri, "Circle Of Life");
        assert_eq!(
            auth.identify(Some(&ok), "GET", uri).map(|i| i.name),
            Ok("Mufasa".into())
        );
        // The same answer again is a replay.
        assert_eq!(auth.identify(Some(&ok), "GET", uri), Err(Refusal::Wrong));
        let next = answer(&nonce, "00000002", uri, "Circle Of Life");
        assert!(auth.identify(Some(&next), "GET", uri).is_ok());
        let wrong = answer(&nonce, "00000003", uri, "wrong");
        assert_eq!(auth.identify(Some(&wrong), "GET", uri), Err(Refusal::Wrong));
        // Another path than the one the answer was computed for.
        let other = answer(&nonce, "00000004", uri, "Circle Of Life");
        assert_eq!(
            auth.identify(Some(&other), "GET", "/elsewhere"),
            Err(Refusal::Wrong)
        );
        // A nonce the server never gave asks for a new challenge.
        let unknown = answer("feedface", "00000001", uri, "Circle Of Life");
        assert_eq!(
            auth.identify(Some(&unknown), "GET", uri),
            Err(Refusal::Challenge { stale: true })
        );
        assert_eq!(
            auth.identify(None, "GET", uri),
            Err(Refusal::Challenge { stale: false })
        );
    }

    #[test]
    fn a_service_account_token_is_issued_for_its_credentials_only() {
        let auth = Auth::new(
            vec![],
            vec![ServiceAccount {
                client_id: "mdb_sa_id".into(),
                secret: "mdb_sa_sk".into(),
                roles: vec!["GROUP_CLUSTER_MANAGER".into()],
            }],
        );
        let basic = |s: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            )
        };
        let (token, lifetime) = auth
            .issue_token(
                Some(&basic("mdb_sa_id:mdb_sa_sk")),
                "grant_type=client_credentials",
            )
            .expect("token");
        assert_eq!(lifetime, TOKEN_LIFETIME);
        let who = auth
            .identify(Some(&format!("Bearer {token}")), "GET", "/x")
            .expect("bearer");
        assert_eq!(who.roles, ["GROUP_CLUSTER_MANAGER"]);
        assert!(
            auth.issue_token(
                Some(&basic("mdb_sa_id:nope")),
                "grant_type=client_credentials"
            )
            .is_err()
        );
        assert!(
            auth.issue_token(Some(&basic("mdb_sa_id:mdb_sa_sk")), "grant_type=password")
                .is_err()
        );
        assert_eq!(
            auth.identify(Some("Bearer forged"), "GET", "/x"),
            Err(Refusal::Wrong)
        );
    }
}
