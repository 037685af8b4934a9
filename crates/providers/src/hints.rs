//! A guard for the style every provider's errors keep: each message ends with a hint for the
//! operator, or wraps an error (`{source}`, `transparent`) that carries one.

/// The `#[error(...)]` messages of `source` (an `error.rs`) that neither hold `(hint: ` (or a
/// `({hint})` field that starts with `hint:`) nor end with the `{source}` they wrap, nor are
/// `transparent`.
pub(crate) fn messages_without_hint(source: &str) -> Vec<String> {
    source
        .split("#[error(")
        .skip(1)
        .filter_map(|rest| rest.split(")]").next())
        .map(str::trim)
        .filter(|message| {
            !(message.contains("(hint: ")
                || message.contains("({hint})")
                || message.starts_with("transparent")
                || message.trim_end_matches([',', '"']).ends_with("{source}"))
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::messages_without_hint;

    #[test]
    fn every_provider_error_message_ends_with_a_hint() {
        for (file, source) in [
            ("atlas/error.rs", include_str!("atlas/error.rs")),
            ("command/error.rs", include_str!("command/error.rs")),
            ("http/error.rs", include_str!("http/error.rs")),
            ("kube/error.rs", include_str!("kube/error.rs")),
            ("mongo/error.rs", include_str!("mongo/error.rs")),
            ("prometheus/error.rs", include_str!("prometheus/error.rs")),
            ("toxiproxy/error.rs", include_str!("toxiproxy/error.rs")),
        ] {
            let missing = messages_without_hint(source);
            assert!(
                missing.is_empty(),
                "{file}: messages without a hint: {missing:#?}"
            );
        }
    }

    #[test]
    fn a_message_without_a_hint_is_named() {
        let source = r#"
            #[error("no proxy {proxy} (hint: create it)")]
            A,
            #[error(transparent)]
            B(#[from] Other),
            #[error("link {link}: {source}")]
            C,
            #[error("[{context}] pods not Ready within {within}: {waiting}")]
            D,
        "#;
        assert_eq!(
            messages_without_hint(source),
            [r#""[{context}] pods not Ready within {within}: {waiting}""#]
        );
    }
}
