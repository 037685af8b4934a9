//! Problems found in user input (platform files, drills, arguments), with where they are.
//!
//! Validation collects every problem instead of stopping at the first, so an author fixes a
//! file in one pass. The CLI renders them with source snippets (miette); the plain
//! [`std::fmt::Display`] form is one grep-able line: `file:line:column: message (hint: …)`.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

/// The most characters of one piece of user input (a step, a value, a key) a diagnostic quotes.
pub const ECHO_LIMIT: usize = 200;

/// The most characters of a whole message or hint a diagnostic prints: a safety net for
/// messages built from input that was not quoted through [`echo`].
pub const MESSAGE_LIMIT: usize = 2_000;

/// `text` cut to at most `limit` characters, the cut marked with how much was left out.
///
/// The one place diagnostics shorten what they print: a 10 MB step line must not be echoed
/// whole, once per place that mentions it.
#[must_use]
pub fn clip(text: &str, limit: usize) -> Cow<'_, str> {
    match text.char_indices().nth(limit) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => {
            let left_out = text[cut..].chars().count();
            Cow::Owned(format!("{}… ({left_out} more characters)", &text[..cut]))
        }
    }
}

/// User input as a diagnostic quotes it: [`clip`]ped to [`ECHO_LIMIT`].
#[must_use]
pub fn echo(input: &str) -> Cow<'_, str> {
    clip(input, ECHO_LIMIT)
}

/// Hides the `user:password@` of every URL in `text` behind as many `*` (safety rule 7), so
/// columns into the text stay right: a file shown as a snippet, an answer shown in an error.
#[must_use]
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut rest = line;
        while let Some(scheme) = rest.find("://") {
            let after = &rest[scheme + 3..];
            let authority_end = after
                .find(['/', '"', '\'', ' ', '\n', '<', '>'])
                .unwrap_or(after.len());
            out.push_str(&rest[..scheme + 3]);
            match after[..authority_end].rfind('@') {
                Some(at) => {
                    out.push_str(&"*".repeat(after[..at].chars().count()));
                    rest = &after[at..];
                }
                None => rest = after,
            }
        }
        out.push_str(rest);
    }
    out
}

/// Keys of a platform file whose values are credentials: they must be `{ env: … }` or
/// `{ file: … }` references, and a value written inline is masked wherever text shows it.
pub const SECRET_KEYS: [&str; 5] = [
    "uri",
    "public-key",
    "private-key",
    "client-id",
    "client-secret",
];

/// Masks, behind as many `*`, every value written inline after a [`SECRET_KEYS`] key
/// (`private-key: "abc"`), in block or flow style; references (`{ env: … }`) and columns stay
/// as they were. A platform file that wrongly holds an Atlas key must not leak it through the
/// snippet of its own error (safety rule 7), as [`redact_userinfo`] does for URIs.
#[must_use]
pub fn redact_secret_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut masked = line.to_owned();
        for key in SECRET_KEYS {
            let mut from = 0;
            while let Some(found) = masked[from..].find(key) {
                let start = from + found;
                let key_end = start + key.len();
                from = key_end;
                let starts_word = masked[..start]
                    .chars()
                    .next_back()
                    .is_none_or(|c| c.is_whitespace() || matches!(c, '{' | ',' | '-'));
                let Some(after) = masked[key_end..].strip_prefix(':') else {
                    continue;
                };
                if !starts_word || (masked[..start].ends_with('-') && !key.contains('-')) {
                    continue;
                }
                let value_start = key_end + 1 + (after.len() - after.trim_start().len());
                let rest = &masked[value_start..];
                if rest.starts_with('{') || rest.trim().is_empty() {
                    continue;
                }
                let value_len = rest.find([',', '}', '\n', '#']).unwrap_or(rest.len());
                let value = rest[..value_len].trim_end();
                let stars = "*".repeat(value.chars().count());
                masked.replace_range(value_start..value_start + value.len(), &stars);
                from = value_start + stars.len();
            }
        }
        out.push_str(&masked);
    }
    out
}

/// A position in a source file; line and column start at 1.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Location {
    /// The file, as the user named it.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl Location {
    /// A location in `file`.
    #[must_use]
    pub fn new(file: impl Into<PathBuf>, line: usize, column: usize) -> Self {
        Self {
            file: file.into(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One problem in user input.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Where it is; absent only when the problem is about a whole file that cannot be read.
    pub location: Option<Location>,
    /// What is wrong, naming the object (step, region, key…).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Problem {
    /// A problem at `location`.
    #[must_use]
    pub fn at(location: Location, message: impl Into<String>) -> Self {
        Self {
            location: Some(location),
            message: message.into(),
            hint: None,
        }
    }

    /// A problem with a whole file.
    #[must_use]
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        Self {
            location: Some(Location::new(file, 1, 1)),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(location) = &self.location {
            write!(f, "{location}: ")?;
        }
        write!(f, "{}", clip(&self.message, MESSAGE_LIMIT))?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {})", clip(hint, MESSAGE_LIMIT))?;
        }
        Ok(())
    }
}

/// Problems found in one pass; an error when not empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Adds a problem.
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// True when nothing is wrong.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorts by file and position so output is stable.
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| a.location.cmp(&b.location).then(a.message.cmp(&b.message)));
        self.0.dedup();
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// The closest candidates to `word`, best first (for "did you mean" hints).
#[must_use]
pub fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::normalized_levenshtein(word, c), c))
        .filter(|(score, _)| *score > 0.3)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.into_iter().take(max).map(|(_, c)| c).collect()
}

/// `"a", "b" or "c"`, for hints listing the known names.
#[must_use]
pub fn one_of<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| format!("\"{}\"", n.as_ref()))
        .collect();
    match quoted.as_slice() {
        [] => "none are defined".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_location_message_and_hint_on_one_line() {
        let p = Problem::at(
            Location::new("drills/x.feature", 3, 5),
            "unknown region \"us-east9\"",
        )
        .hint("known regions: \"us-west1\" or \"us-west2\"");
        assert_eq!(
            p.to_string(),
            "drills/x.feature:3:5: unknown region \"us-east9\" (hint: known regions: \"us-west1\" or \"us-west2\")"
        );
    }

    #[test]
    fn clip_keeps_short_text_and_marks_the_cut_of_long_text() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("0123456789", 10), "0123456789");
        assert_eq!(clip("0123456789ab", 10), "0123456789… (2 more characters)");
        // Characters, not bytes: a cut never splits a character.
        assert_eq!(clip("ééééé", 2), "éé… (3 more characters)");
        let huge = "x".repeat(10_000_000);
        assert!(echo(&huge).len() < ECHO_LIMIT + 40, "{}", echo(&huge).len());
    }

    #[test]
    fn a_problem_built_from_huge_input_prints_a_bounded_line() {
        let huge = "y".repeat(1_000_000);
        let p = Problem::at(
            Location::new("d.feature", 3, 5),
            format!("undefined step: When {huge}"),
        )
        .hint(format!("not {huge}"));
        let line = p.to_string();
        assert!(line.len() < 2 * MESSAGE_LIMIT + 200, "{}", line.len());
        assert!(
            line.starts_with("d.feature:3:5: undefined step: When yyy"),
            "{}",
            &line[..40]
        );
        assert!(line.contains("more characters)"));
    }

    #[test]
    fn inline_credentials_are_masked_and_references_and_columns_kept() {
        let text = "      private-key: \"c0ffee-s3cret\"\n      public-key: { env: ATLAS_PUBLIC }\n      service-account: { client-id: abc123, client-secret: def456 }\n  uri: mongodb://h/x # note\n  my-uri: plain\n";
        let masked = redact_secret_values(text);
        for secret in ["c0ffee", "abc123", "def456", "mongodb://h/x"] {
            assert!(!masked.contains(secret), "{secret} in {masked}");
        }
        assert!(masked.contains("{ env: ATLAS_PUBLIC }"), "{masked}");
        assert!(masked.contains("my-uri: plain"), "{masked}");
        assert!(masked.contains("# note"), "{masked}");
        assert_eq!(masked.len(), text.len());
        assert_eq!(masked.lines().count(), text.lines().count());
    }

    #[test]
    fn userinfo_in_urls_is_masked_and_columns_kept() {
        let text = "    uri: \"mongodb://admin:hunter2@db:27017/x\"\nurl: http://plain.example/ <http://u:p@h>\n";
        let masked = redact_userinfo(text);
        assert!(
            !masked.contains("hunter2") && !masked.contains("admin"),
            "{masked}"
        );
        assert!(!masked.contains("u:p@"), "{masked}");
        assert_eq!(masked.len(), text.len());
        assert!(
            masked.contains("@db:27017") && masked.contains("http://plain.example/"),
            "{masked}"
        );
    }

    #[test]
    fn closest_ranks_near_names_first() {
        let names = ["us-west1", "us-west2", "eu-central1"];
        assert_eq!(closest("us-wset1", names, 2), vec!["us-west1", "us-west2"]);
        assert!(closest("zzzzzzzzzzzzzz", names, 2).is_empty());
    }

    #[test]
    fn one_of_lists_names_naturally() {
        assert_eq!(one_of::<&str>(&[]), "none are defined");
        assert_eq!(one_of(&["a"]), "\"a\"");
        assert_eq!(one_of(&["a", "b", "c"]), "\"a\", \"b\" or \"c\"");
    }
}
