//! Removing a connection string and its password from any text (safety rule 7): every error
//! that could carry the URI goes through a [`Redactor`] before it reaches a log, a report or
//! the terminal.

/// Removes a connection string and its password from any text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for `uri`: hides the whole URI, its userinfo and its password.
    #[must_use]
    pub fn new(uri: &str) -> Self {
        let mut needles = vec![uri.to_owned()];
        if let Some(rest) = uri.split_once("://").map(|(_, r)| r)
            && let Some((userinfo, _)) = rest.rsplit_once('@')
        {
            needles.push(userinfo.to_owned());
            if let Some((_, password)) = userinfo.split_once(':')
                && !password.is_empty()
            {
                needles.push(password.to_owned());
                if let Ok(decoded) = percent_decode(password) {
                    needles.push(decoded);
                }
            }
        }
        needles.retain(|n| !n.is_empty());
        // Longest first, so the whole URI is replaced before its parts.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    /// `text` with every secret part replaced by `<redacted>`.
    #[must_use]
    pub fn clean(&self, text: &str) -> String {
        self.needles
            .iter()
            .fold(text.to_owned(), |t, n| t.replace(n.as_str(), "<redacted>"))
    }
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redactor_hides_the_uri_its_userinfo_and_its_password() {
        let r = Redactor::new("mongodb://admin:s3cr%21t@db1:27017/?replicaSet=rs0");
        let text = "failed mongodb://admin:s3cr%21t@db1:27017/?replicaSet=rs0 with admin:s3cr%21t and s3cr!t";
        let clean = r.clean(text);
        assert!(!clean.contains("s3cr"), "{clean}");
        assert!(clean.contains("<redacted>"), "{clean}");
    }
}
