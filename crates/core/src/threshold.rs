//! A threshold a measured number is compared with: a guard's `abort-if: "> 14.4"`, an SLO
//! assertion's `below 0.05`. Pure.

use std::fmt;
use std::str::FromStr;

/// How a value is compared with the threshold's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Comparison {
    /// `>`
    Above,
    /// `>=`
    AtLeast,
    /// `<`
    Below,
    /// `<=`
    AtMost,
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
}

impl Comparison {
    const ALL: [(&'static str, Self); 6] = [
        (">=", Self::AtLeast),
        ("<=", Self::AtMost),
        ("==", Self::Equal),
        ("!=", Self::NotEqual),
        (">", Self::Above),
        ("<", Self::Below),
    ];

    /// Its operator as written.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(s, _)| s)
    }
}

/// `value` compared with `than` by `comparison`: `> 14.4`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Threshold {
    /// The comparison.
    pub comparison: Comparison,
    /// The number compared with.
    pub than: f64,
}

impl Threshold {
    /// `< than`: what "stayed below" and "is below" assert.
    #[must_use]
    pub fn below(than: f64) -> Self {
        Self {
            comparison: Comparison::Below,
            than,
        }
    }

    /// Whether `value` meets the comparison. NaN meets nothing (a ratio of zero requests is
    /// no evidence either way).
    #[must_use]
    pub fn holds_for(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        match self.comparison {
            Comparison::Above => value > self.than,
            Comparison::AtLeast => value >= self.than,
            Comparison::Below => value < self.than,
            Comparison::AtMost => value <= self.than,
            Comparison::Equal => (value - self.than).abs() <= f64::EPSILON * self.than.abs(),
            Comparison::NotEqual => (value - self.than).abs() > f64::EPSILON * self.than.abs(),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.comparison.symbol(), self.than)
    }
}

/// A threshold that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{text}\" is not a comparison with a number (hint: write an operator and a number, e.g. \"> 14.4\" or \"< 0.99\"; operators: >, >=, <, <=, ==, !=)"
)]
pub struct ThresholdError {
    /// What was written (clipped).
    pub text: String,
}

/// What a threshold must look like, for diagnostics that print their own hint.
pub const THRESHOLD_HINT: &str = "write an operator and a number, e.g. \"> 14.4\" or \"< 0.99\"; operators: >, >=, <, <=, ==, !=";

impl ThresholdError {
    /// The message and the hint apart, for a located problem.
    #[must_use]
    pub fn parts(&self) -> (String, &'static str) {
        (
            format!("\"{}\" is not a comparison with a number", self.text),
            THRESHOLD_HINT,
        )
    }
}

impl FromStr for Threshold {
    type Err = ThresholdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ThresholdError {
            text: crate::diagnostic::echo(text).into_owned(),
        };
        let trimmed = text.trim();
        let (comparison, rest) = Comparison::ALL
            .iter()
            .find_map(|(symbol, c)| trimmed.strip_prefix(symbol).map(|rest| (*c, rest)))
            .ok_or_else(error)?;
        let than: f64 = rest.trim().parse().map_err(|_| error())?;
        if !than.is_finite() {
            return Err(error());
        }
        Ok(Self { comparison, than })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_parses_and_compares_as_written() {
        let cases = [
            ("> 14.4", 14.5, true),
            ("> 14.4", 14.4, false),
            (">= 14.4", 14.4, true),
            ("< 0.99", 0.98, true),
            ("<0.99", 0.99, false),
            ("<= 0.99", 0.99, true),
            ("== 1", 1.0, true),
            ("!= 1", 1.0, false),
            ("  >   -2e-3 ", 0.0, true),
        ];
        for (text, value, holds) in cases {
            let threshold: Threshold = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(threshold.holds_for(value), holds, "{text} for {value}");
        }
        assert_eq!(
            ">=14.4".parse::<Threshold>().map(|t| t.to_string()),
            Ok(">= 14.4".to_owned())
        );
    }

    #[test]
    fn nan_meets_no_threshold() {
        for text in ["> 0", "< 1", "!= 3"] {
            let t: Threshold = text.parse().expect("threshold");
            assert!(!t.holds_for(f64::NAN), "{text}");
        }
    }

    #[test]
    fn a_threshold_without_operator_or_number_is_refused_with_a_hint() {
        for text in ["14.4", "> ", "> lots", "=> 3", "> NaN", "> inf", ""] {
            let error = text.parse::<Threshold>().expect_err(text);
            assert!(
                error.to_string().contains("hint: write an operator"),
                "{error}"
            );
        }
    }
}
