//! What the language server says about one `.feature` buffer: `validate`'s problems as
//! diagnostics, completion of steps and of the platform's names at argument positions, and
//! hover with a step's doc and example. Pure apart from the private copy `diagnostics` checks.
//!
//! Everything about steps comes from the steps crate's catalog (`firedrill_steps::docs()` and
//! `Catalog::matched`): the patterns' `"{kind}"` arguments say which platform names belong where.

use std::path::{Path, PathBuf};

use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, Diagnostic, DiagnosticSeverity,
    Documentation, Hover, HoverContents, InsertTextFormat, MarkupContent, MarkupKind, Position,
    Range, TextEdit,
};

use firedrill_core::diagnostic::Problem;
use firedrill_platform::Platform;
use firedrill_steps::{Catalog, Matched, StepDoc};

use super::super::{Drills, load};

/// The keywords a step line starts with.
const KEYWORDS: [&str; 6] = ["Given", "When", "Then", "And", "But", "*"];

/// A step line: its keyword, where its text starts (in characters) and the text.
struct StepLine<'a> {
    keyword: &'a str,
    start: usize,
    text: &'a str,
}

fn step_line(line: &str) -> Option<StepLine<'_>> {
    let indent = line.len() - line.trim_start().len();
    let rest = &line[indent..];
    KEYWORDS.iter().find_map(|k| {
        let after = rest.strip_prefix(k)?.strip_prefix(' ')?;
        Some(StepLine {
            keyword: k,
            start: line[..indent + k.len() + 1].chars().count(),
            text: after,
        })
    })
}

/// The Given/When/Then an `And`, `But` or `*` on line `at` continues.
fn effective_keyword<'a>(lines: &[&'a str], at: usize, keyword: &'a str) -> &'a str {
    if matches!(keyword, "Given" | "When" | "Then") {
        return keyword;
    }
    for line in lines[..at].iter().rev() {
        let trimmed = line.trim_start();
        if let Some(step) = step_line(line)
            && matches!(step.keyword, "Given" | "When" | "Then")
        {
            return step.keyword;
        }
        if trimmed.starts_with("Scenario") || trimmed.starts_with("Background") {
            break;
        }
    }
    "Given"
}

/// `validate`'s problems with `text` (the buffer of `path`) against the platform, as
/// diagnostics. The buffer is written to a private copy in `scratch` and checked by the very
/// code `firedrill validate` runs; a problem elsewhere (the platform file) is shown on line 1.
pub fn diagnostics(
    text: &str,
    path: &Path,
    scratch: &Path,
    platform: Option<&Path>,
) -> Vec<Diagnostic> {
    let name = path
        .file_name()
        .map_or_else(|| "buffer.feature".into(), PathBuf::from);
    let copy = scratch.join(name);
    if let Err(e) = std::fs::write(&copy, text) {
        return vec![diagnostic(
            Range::default(),
            format!("cannot check this file: writing {}: {e}", copy.display()),
        )];
    }
    let drills = Drills {
        paths: vec![copy.clone()],
        platform: platform.map(Path::to_path_buf),
        tags: None,
        name: None,
    };
    let checked = load::check(&drills, load::platform_for_checks(platform));
    let lines: Vec<&str> = text.lines().collect();
    match checked {
        Ok(_) => Vec::new(),
        Err(problems) => problems
            .0
            .iter()
            .map(|p| problem_diagnostic(p, &copy, &lines))
            .collect(),
    }
}

fn problem_diagnostic(problem: &Problem, copy: &Path, lines: &[&str]) -> Diagnostic {
    let hint = problem
        .hint
        .as_deref()
        .map(|h| format!("\nhint: {h}"))
        .unwrap_or_default();
    match &problem.location {
        Some(at) if at.file == copy => {
            let line = at.line.saturating_sub(1);
            let text = lines.get(line).copied().unwrap_or_default();
            let start = utf16(text, at.column.saturating_sub(1));
            let end = utf16(text, text.chars().count()).max(start);
            diagnostic(
                Range::new(
                    Position::new(to_u32(line), start),
                    Position::new(to_u32(line), end),
                ),
                format!("{}{hint}", problem.message),
            )
        }
        Some(at) => diagnostic(
            Range::default(),
            format!(
                "{}:{}:{}: {}{hint}",
                at.file.display(),
                at.line,
                at.column,
                problem.message
            ),
        ),
        None => diagnostic(Range::default(), format!("{}{hint}", problem.message)),
    }
}

fn diagnostic(range: Range, message: String) -> Diagnostic {
    Diagnostic {
        range,
        severity: Some(DiagnosticSeverity::ERROR),
        source: Some("firedrill".into()),
        message,
        ..Diagnostic::default()
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The UTF-16 offset (LSP's default unit) of the `chars`-th character of `line`.
fn utf16(line: &str, chars: usize) -> u32 {
    to_u32(line.chars().take(chars).map(char::len_utf16).sum())
}

/// The character index of a UTF-16 offset in `line`.
fn chars_at(line: &str, utf16: u32) -> usize {
    let mut units = 0;
    for (i, c) in line.chars().enumerate() {
        if units >= utf16 as usize {
            return i;
        }
        units += c.len_utf16();
    }
    line.chars().count()
}

/// The argument kind (`region`, `link`, …) whose quotes the cursor is in. `typed` is the step
/// text up to and including the opening quote. A pattern whose whole text before a `"{kind}"`
/// matches `typed` (its other arguments as any text, optional brackets optional) names the
/// kind; failing that, the pattern whose words since its previous argument end `typed` does,
/// the longest words winning (`every zone of region "` is a region, not a zone).
fn argument_kind(docs: &[StepDoc], keyword: &str, typed: &str) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for doc in docs.iter().filter(|d| d.keyword == keyword) {
        if let Some(kind) = expression_kind(doc.pattern, typed) {
            return Some(kind.to_owned());
        }
        let pattern = doc.shown();
        for (open, close, previous_end) in quoted_arguments(&pattern) {
            let kind = &pattern[open + 1..close];
            if prefix_regex(&pattern[..open]).is_some_and(|re| re.is_match(typed)) {
                return Some(kind.to_owned());
            }
            let words: String = pattern[previous_end..open]
                .chars()
                .filter(|c| !matches!(c, '[' | ']'))
                .collect();
            let words = words.rsplit('|').next().unwrap_or_default();
            if typed.ends_with(words) && best.as_ref().is_none_or(|(len, _)| words.len() > *len) {
                best = Some((words.len(), kind.to_owned()));
            }
        }
    }
    best.map(|(_, kind)| kind)
}

/// The quoted parameter of a step's cucumber expression whose opening quote `typed` ends at:
/// the expression before it, each earlier parameter read with the regex the runner uses, must
/// match the whole of `typed` (up to and including the quote).
fn expression_kind(expression: &str, typed: &str) -> Option<&'static str> {
    let mut re = String::from("^");
    let mut rest = expression;
    while let Some(open) = rest.find('{') {
        re.push_str(&expression_literal(&rest[..open]));
        let close = rest[open..].find('}')? + open;
        let param = firedrill_steps::param::doc(&rest[open + 1..close])?;
        if param.shown == format!("\"{{{}}}\"", param.name) {
            let quoted = regex::Regex::new(&format!("{re}\"$")).ok()?;
            if quoted.is_match(typed) {
                return Some(param.name);
            }
        }
        re.push_str(&format!("(?:{})", param.regex));
        rest = &rest[close + 1..];
    }
    None
}

/// The regex of a literal run of a cucumber expression: `\x` escapes, `(optional)` text and
/// `a/b` alternatives between words.
fn expression_literal(text: &str) -> String {
    let mut re = String::new();
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            re.push(' ');
        }
        let mut alternatives = Vec::new();
        let mut current = String::new();
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(next) = chars.next() {
                        current.push_str(&regex::escape(&next.to_string()));
                    }
                }
                '(' => current.push_str("(?:"),
                ')' => current.push_str(")?"),
                '/' => alternatives.push(std::mem::take(&mut current)),
                c => current.push_str(&regex::escape(&c.to_string())),
            }
        }
        if alternatives.is_empty() {
            re.push_str(&current);
        } else {
            alternatives.push(current);
            re.push_str(&format!("(?:{})", alternatives.join("|")));
        }
    }
    re
}

/// Each `"{kind}"` of `pattern`: the offsets of its braces, and where the argument before it
/// ended (0 for the first).
fn quoted_arguments(pattern: &str) -> Vec<(usize, usize, usize)> {
    let mut found = Vec::new();
    let mut previous_end = 0;
    let mut search = 0;
    while let Some(open) = pattern[search..].find('{').map(|i| i + search) {
        let Some(close) = pattern[open..].find('}').map(|i| i + open) else {
            break;
        };
        if pattern[..open].ends_with('"') && pattern[close + 1..].starts_with('"') {
            found.push((open, close, previous_end));
        }
        previous_end = close + 1;
        search = close + 1;
    }
    found
}

/// A regex matching a step text that reads like `prefix` of a pattern: literal words, any
/// text for a `{placeholder}`, `[optional]` parts optional. None where the prefix holds an
/// alternative (`a|b`), whose extent the pattern does not mark.
fn prefix_regex(prefix: &str) -> Option<regex::Regex> {
    if prefix.contains('|') {
        return None;
    }
    let mut re = String::from("^");
    let mut rest = prefix;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                let end = rest.find('}')?;
                re.push_str(".+?");
                rest = &rest[end + 1..];
                continue;
            }
            '[' => re.push_str("(?:"),
            ']' => re.push_str(")?"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        rest = &rest[c.len_utf8()..];
    }
    re.push('$');
    regex::Regex::new(&re).ok()
}

/// The platform's names for an argument kind, each with a detail.
fn values(kind: &str, platform: &Platform) -> Vec<(String, String)> {
    match kind {
        "region" => platform
            .regions
            .iter()
            .map(|(name, r)| (name.clone(), format!("{:?} region", r.role).to_lowercase()))
            .collect(),
        "zone" => platform
            .zones()
            .map(|(zone, region)| (zone.to_owned(), format!("zone of {region}")))
            .collect(),
        "namespace" => platform
            .namespaces
            .iter()
            .map(|(name, ns)| {
                let services: Vec<&str> = ns.services.keys().map(String::as_str).collect();
                (name.clone(), format!("namespace: {}", services.join(", ")))
            })
            .collect(),
        "link" => platform
            .toxiproxy
            .iter()
            .flat_map(|t| t.links.iter())
            .map(|(name, l)| (name.clone(), format!("Toxiproxy proxy {}", l.proxy)))
            .collect(),
        "probe" => platform
            .probes
            .iter()
            .map(|(name, p)| (name.clone(), format!("probe of {}", p.url)))
            .collect(),
        "fault" => platform
            .faults
            .iter()
            .map(|(name, f)| (name.clone(), f.description.clone()))
            .collect(),
        "command" => platform
            .commands
            .iter()
            .map(|(name, c)| (name.clone(), c.run.join(" ")))
            .collect(),
        "service" => {
            let mut services: Vec<(String, String)> = platform
                .namespaces
                .iter()
                .flat_map(|(ns, n)| {
                    n.services
                        .keys()
                        .map(move |s| (s.clone(), format!("service in {ns}")))
                })
                .collect();
            services.sort();
            services.dedup_by(|a, b| a.0 == b.0);
            services
        }
        _ => Vec::new(),
    }
}

/// Completions at `position` of `text`: the platform's names inside an argument's quotes,
/// else every step of the line's keyword (inserted as its example, arguments as tab stops).
pub fn completion(text: &str, position: Position, platform: &Platform) -> Vec<CompletionItem> {
    let lines: Vec<&str> = text.lines().collect();
    let at = position.line as usize;
    let line = lines.get(at).copied().unwrap_or_default();
    let cursor = chars_at(line, position.character);
    let Some(step) = step_line(line) else {
        return keyword_items(line, cursor);
    };
    if cursor < step.start {
        return Vec::new();
    }
    let keyword = effective_keyword(&lines, at, step.keyword);
    let docs = firedrill_steps::docs();
    let typed: String = step.text.chars().take(cursor - step.start).collect();
    if typed.matches('"').count() % 2 == 1 {
        // Inside quotes: the argument's kind from the words before them.
        let quote = typed.rfind('"').unwrap_or(0);
        let Some(kind) = argument_kind(&docs, keyword, &typed[..=quote]) else {
            return Vec::new();
        };
        let start = step.start + typed[..=quote].chars().count();
        let range = Range::new(
            Position::new(position.line, utf16(line, start)),
            Position::new(position.line, utf16(line, cursor)),
        );
        return values(&kind, platform)
            .into_iter()
            .map(|(value, detail)| CompletionItem {
                label: value.clone(),
                kind: Some(CompletionItemKind::VALUE),
                detail: Some(detail),
                text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(range, value))),
                ..CompletionItem::default()
            })
            .collect();
    }
    let range = Range::new(
        Position::new(position.line, utf16(line, step.start)),
        Position::new(position.line, utf16(line, cursor)),
    );
    docs.iter()
        .filter(|d| d.keyword == keyword)
        .map(|d| CompletionItem {
            label: d.shown(),
            kind: Some(CompletionItemKind::SNIPPET),
            detail: Some(format!("{} {}", d.keyword, d.example)),
            documentation: Some(Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: d.doc.to_owned(),
            })),
            filter_text: Some(d.shown()),
            insert_text_format: Some(InsertTextFormat::SNIPPET),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit::new(
                range,
                snippet(d.example),
            ))),
            ..CompletionItem::default()
        })
        .collect()
}

/// Step keywords at the start of a line inside a scenario.
fn keyword_items(line: &str, cursor: usize) -> Vec<CompletionItem> {
    let typed: String = line.chars().take(cursor).collect();
    let word = typed.trim_start();
    if word.contains(' ') {
        return Vec::new();
    }
    KEYWORDS[..5]
        .iter()
        .filter(|k| k.starts_with(word))
        .map(|k| CompletionItem {
            label: (*k).to_owned(),
            kind: Some(CompletionItemKind::KEYWORD),
            insert_text: Some(format!("{k} ")),
            ..CompletionItem::default()
        })
        .collect()
}

/// An example as a snippet: each quoted argument a tab stop holding the example's value.
fn snippet(example: &str) -> String {
    let escape = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('$', "\\$")
            .replace('}', "\\}")
    };
    let mut out = String::new();
    let mut stop = 0;
    for (i, part) in example.split('"').enumerate() {
        if i % 2 == 1 {
            stop += 1;
            out.push_str(&format!("\"${{{stop}:{}}}\"", escape(part)));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// The doc and example of the step under `position`.
pub fn hover(text: &str, position: Position, catalog: &Catalog) -> Option<Hover> {
    let lines: Vec<&str> = text.lines().collect();
    let at = position.line as usize;
    let line = lines.get(at)?;
    let step = step_line(line)?;
    let keyword = effective_keyword(&lines, at, step.keyword);
    let doc = match catalog.matched(&firedrill_steps::step(keyword, step.text.trim_end())) {
        Matched::One { doc, .. } => doc,
        Matched::Undefined { .. } | Matched::Ambiguous { .. } => return None,
    };
    let end = utf16(line, line.chars().count());
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: format!(
                "**{} {}**\n\n{}\n\n```gherkin\n{} {}\n```",
                doc.keyword,
                doc.shown(),
                doc.doc,
                doc.keyword,
                doc.example
            ),
        }),
        range: Some(Range::new(
            Position::new(position.line, utf16(line, step.start)),
            Position::new(position.line, end),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> Platform {
        super::super::super::embedded::platform_for_checks().unwrap_or_else(|p| panic!("{p}"))
    }

    fn labels(items: &[CompletionItem]) -> Vec<&str> {
        items.iter().map(|i| i.label.as_str()).collect()
    }

    #[test]
    fn inside_an_arguments_quotes_the_platforms_names_of_its_kind_complete() {
        let platform = platform();
        let text = "Feature: f\n  Scenario: s\n    When region \"us\n    And the link \"\n    Then the \"\" probe is running\n    When every zone of region \"\n    When zone \"\n";
        let at =
            |line: u32, character: u32| completion(text, Position::new(line, character), &platform);
        assert_eq!(labels(&at(2, 19)), ["us-west1", "us-west2"]);
        let links = at(3, 18);
        assert!(!links.is_empty(), "links complete after `the link \"`");
        let names: Vec<&String> = platform
            .toxiproxy
            .iter()
            .flat_map(|t| t.links.keys())
            .collect();
        assert_eq!(labels(&links), names);
        let probes = at(4, 14);
        assert_eq!(labels(&probes), platform.probes.keys().collect::<Vec<_>>());
        assert_eq!(
            labels(&at(5, 31)),
            ["us-west1", "us-west2"],
            "region, not zone"
        );
        assert!(labels(&at(6, 15)).contains(&"us-west1-a"), "zones");
        let pods = "Feature: f\n  Scenario: s\n    When 2 pods of \"app=x\" in \"\n";
        assert_eq!(
            labels(&completion(pods, Position::new(2, 31), &platform)),
            platform.namespaces.keys().collect::<Vec<_>>(),
            "a namespace, though a Mongo step has a region after the same ` in `"
        );
        // The edit replaces what was typed inside the quotes.
        let Some(CompletionTextEdit::Edit(edit)) = &at(2, 19)[0].text_edit else {
            panic!("a text edit");
        };
        assert_eq!(
            edit.range,
            Range::new(Position::new(2, 17), Position::new(2, 19))
        );
    }

    #[test]
    fn after_a_keyword_the_steps_of_that_keyword_complete_and_and_continues_the_one_before() {
        let platform = platform();
        let text = "Feature: f\n  Scenario: s\n    When region \"us-west1\" goes dark\n    And \n";
        let items = completion(text, Position::new(3, 8), &platform);
        let whens: Vec<String> = firedrill_steps::docs()
            .iter()
            .filter(|d| d.keyword == "When")
            .map(|d| d.shown())
            .collect();
        assert_eq!(labels(&items), whens);
        let dark = items
            .iter()
            .find(|i| i.label == "region \"{region}\" goes dark")
            .and_then(|i| i.text_edit.clone());
        let Some(CompletionTextEdit::Edit(edit)) = dark else {
            panic!("goes dark completes");
        };
        assert_eq!(edit.new_text, "region \"${1:us-west1}\" goes dark");
    }

    #[test]
    fn hover_shows_the_matched_steps_doc_and_example() {
        let catalog = Catalog::build().unwrap_or_else(|e| panic!("{e}"));
        let text = "Feature: f\n  Scenario: s\n    Given the platform is healthy\n    When region \"us-west2\" goes dark\n    And nonsense here\n";
        let Some(Hover {
            contents: HoverContents::Markup(markup),
            ..
        }) = hover(text, Position::new(3, 10), &catalog)
        else {
            panic!("hover on a known step");
        };
        let doc = firedrill_steps::docs()
            .into_iter()
            .find(|d| d.shown() == "region \"{region}\" goes dark")
            .unwrap_or_else(|| panic!("the step exists"));
        assert!(markup.value.contains(doc.doc), "{}", markup.value);
        assert!(markup.value.contains(&format!("When {}", doc.example)));
        assert!(hover(text, Position::new(4, 8), &catalog).is_none());
    }

    #[test]
    fn diagnostics_are_validates_problems_at_the_argument() {
        let scratch = tempfile_dir();
        let text = "Feature: f\n  Scenario: s\n    When region \"us-east9\" goes dark\n";
        let found = diagnostics(text, Path::new("/x/drill.feature"), &scratch, None);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].range.start, Position::new(2, 17), "at the value");
        assert!(
            found[0]
                .message
                .contains("region \"us-east9\" is not in the platform"),
            "{}",
            found[0].message
        );
        assert!(found[0].message.contains("hint: known regions"));
        let fine = "Feature: f\n  Scenario: s\n    When region \"us-west1\" goes dark\n";
        assert!(diagnostics(fine, Path::new("/x/drill.feature"), &scratch, None).is_empty());
        let _ = std::fs::remove_dir_all(scratch);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("firedrill-lsp-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}
