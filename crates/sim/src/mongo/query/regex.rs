//! BSON regular expressions, compiled with PCRE2 — the engine MongoDB itself uses — in UTF
//! mode with the server's option letters (`i m s x u`).

use crate::mongo::error::CommandError;

/// A compiled BSON regular expression.
#[derive(Debug, Clone)]
pub(crate) struct Regex {
    pub pattern: String,
    pub options: String,
    compiled: pcre2::bytes::Regex,
}

impl Regex {
    /// Compiles `pattern` with `options`.
    ///
    /// # Errors
    ///
    /// 51108 for an option letter the server does not know, 51091 for a pattern PCRE2 refuses,
    /// with the server's messages.
    pub(crate) fn new(pattern: &str, options: &str) -> Result<Self, CommandError> {
        let mut builder = pcre2::bytes::RegexBuilder::new();
        builder.utf(true);
        for flag in options.chars() {
            match flag {
                'i' => builder.caseless(true),
                'm' => builder.multi_line(true),
                's' => builder.dotall(true),
                'x' => builder.extended(true),
                'u' => &mut builder,
                other => {
                    return Err(CommandError::new(
                        51108,
                        "Location51108",
                        format!("invalid flag in regex options: {other}"),
                    ));
                }
            };
        }
        let compiled = builder.build(pattern).map_err(|e| {
            let text = e.to_string();
            let reason = text.rsplit(": ").next().unwrap_or(&text).to_owned();
            CommandError::new(
                51091,
                "Location51091",
                format!("Regular expression is invalid: {reason}"),
            )
        })?;
        Ok(Self {
            pattern: pattern.to_owned(),
            options: options.to_owned(),
            compiled,
        })
    }

    /// Whether the expression matches somewhere in `text`.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        // A match that exceeds PCRE2's limits does not match, as on the server.
        self.compiled.is_match(text.as_bytes()).unwrap_or(false)
    }

    /// Whether `v` is matched: strings and symbols by the pattern, a stored regex by equality.
    pub(crate) fn matches_value(&self, v: &bson::Bson) -> bool {
        match v {
            bson::Bson::String(s) | bson::Bson::Symbol(s) => self.is_match(s),
            bson::Bson::RegularExpression(r) => {
                r.pattern == self.pattern && sorted(&r.options) == sorted(&self.options)
            }
            _ => false,
        }
    }
}

fn sorted(options: &str) -> Vec<char> {
    let mut v: Vec<char> = options.chars().collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_follow_the_server() {
        assert!(Regex::new("^a", "").expect("valid").is_match("alice"));
        assert!(!Regex::new("^a", "").expect("valid").is_match("Anna"));
        assert!(Regex::new("^a", "i").expect("valid").is_match("Anna"));
        assert!(Regex::new("^b", "m").expect("valid").is_match("a\nb"));
        assert!(Regex::new("a.b", "s").expect("valid").is_match("a\nb"));
        assert!(
            Regex::new("a b # comment", "x")
                .expect("valid")
                .is_match("ab")
        );
        assert!(
            Regex::new("^.$", "").expect("valid").is_match("é"),
            "UTF mode"
        );
        assert!(
            Regex::new("(?<=a)b", "").expect("valid").is_match("ab"),
            "PCRE lookbehind"
        );
    }

    #[test]
    fn bad_patterns_and_options_get_the_servers_errors() {
        let e = Regex::new("(", "").expect_err("unbalanced");
        assert_eq!(e.code, 51091);
        assert!(
            e.errmsg.starts_with("Regular expression is invalid: "),
            "{}",
            e.errmsg
        );
        let e = Regex::new("a", "z").expect_err("bad flag");
        assert_eq!(
            (e.code, e.errmsg.as_str()),
            (51108, "invalid flag in regex options: z")
        );
    }
}
