//! Hiding credentials in text firedrill shows (safety rule 7): an answer from a server that
//! echoed a request's headers, an error that quotes a URL. One place, so every client that
//! sends credentials (the Pushgateway's pusher, the Prometheus client) hides them alike.

use std::sync::LazyLock;

use base64::Engine as _;

use crate::diagnostic::{clip, redact_userinfo};

/// Every form a credential may come back in: the secret itself and, for basic auth, the
/// `user:password` pair and its base64 (as an echoed `Authorization` header holds it).
#[must_use]
pub fn credential_forms(basic: Option<(&str, &str)>, bearer: Option<&str>) -> Vec<String> {
    let mut secrets = Vec::new();
    if let Some((user, password)) = basic {
        let pair = format!("{user}:{password}");
        secrets.push(base64::engine::general_purpose::STANDARD.encode(&pair));
        secrets.push(pair);
        secrets.push(password.to_owned());
    }
    secrets.extend(bearer.map(str::to_owned));
    secrets.retain(|s| !s.is_empty());
    secrets
}

/// `text` (an answer from a server, or a proxy in front of it) with every one of `secrets`,
/// `Authorization`-like header values, bearer and basic tokens and URL userinfo hidden, on one
/// line, [`clip`]ped to `limit` characters: safe to print in a warning or an error.
#[must_use]
pub fn scrub(text: &str, secrets: &[String], limit: usize) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    // The longest first: a password inside its own base64 pair must not split it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = secrets
        .iter()
        .fold(text.to_owned(), |t, s| t.replace(s.as_str(), "<redacted>"));
    match (&*HEADER_VALUE, &*AUTH_SCHEME) {
        (Some(header), Some(scheme)) => {
            out = header.replace_all(&out, "${1}${2}<redacted>").into_owned();
            out = scheme.replace_all(&out, "${1} <redacted>").into_owned();
        }
        // Cannot happen (the patterns are constant); if it did, print nothing of the text.
        _ => return "<answer not shown>".to_owned(),
    }
    let out = redact_userinfo(&out);
    let one_line: String = out
        .split(char::is_control)
        .filter(|part| !part.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    clip(&one_line, limit).into_owned()
}

/// `Authorization: …`, `Cookie: …`, `"x-api-key": "…"`: the name and separator kept, the value hidden.
static HEADER_VALUE: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(
        r#"(?i)((?:proxy-)?authorization|cookie|set-cookie|x-api-key|api-key|x-auth-token|token|password)(["']?\s*[:=]\s*["']?)[^\r\n"',;}]+"#,
    )
    .ok()
});

/// `Bearer …` and `Basic …` wherever they appear.
static AUTH_SCHEME: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+").ok());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_credential_and_every_auth_header_is_hidden() {
        let secrets = credential_forms(Some(("bot", "hunter2-pw")), Some("s3cret-token"));
        let echoed = "401: Authorization: Basic Ym90Omh1bnRlcjItcHc=\nx-api-key: abc\npassword=hunter2-pw token s3cret-token, see https://bot:hunter2-pw@host/";
        let shown = scrub(echoed, &secrets, 300);
        for secret in ["hunter2-pw", "s3cret-token", "Ym90Omh1bnRlcjItcHc=", "abc"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(!shown.contains('\n'), "{shown}");
        assert!(
            shown.starts_with("401: Authorization: <redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn a_long_answer_is_clipped() {
        let shown = scrub(&"x".repeat(1000), &[], 300);
        assert!(shown.starts_with(&"x".repeat(300)), "{shown}");
        assert!(shown.contains("(700 more characters)"), "{shown}");
    }
}
