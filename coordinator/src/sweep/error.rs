use std::fmt::Display;

/// A sweep file that cannot be accepted. Every message names the file, and the key and value at
/// fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{source_name}: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },

    #[error("{source_name}: unknown key `{key}` (expected one of: {expected})")]
    UnknownKey {
        source_name: String,
        key: String,
        expected: String,
    },

    #[error("{source_name}: missing required key `{key}`")]
    Missing { source_name: String, key: String },

    #[error("{source_name}: `{key}` = {value} is invalid: {reason}")]
    Invalid {
        source_name: String,
        key: String,
        value: String,
        reason: String,
    },

    #[error("{source_name}: grid axis `{key}` {reason}")]
    UnknownAxis {
        source_name: String,
        key: String,
        reason: String,
    },

    #[error(
        "{source_name}: the grid expands to {count} trials, more than the limit of {limit} (`grid`)"
    )]
    TooManyTrials {
        source_name: String,
        count: u64,
        limit: u64,
    },

    #[error("{source_name}: at grid point {point} ({assignment}): {message}")]
    AtGridPoint {
        source_name: String,
        point: u64,
        assignment: String,
        message: String,
    },
}

impl SweepError {
    pub(crate) fn syntax(source_name: &str, error: impl Display) -> Self {
        Self::Syntax {
            source_name: source_name.to_string(),
            message: error.to_string().trim_end().to_string(),
        }
    }

    pub(crate) fn unknown_key(source_name: &str, key: &str, expected: &[&str]) -> Self {
        Self::UnknownKey {
            source_name: source_name.to_string(),
            key: key.to_string(),
            expected: expected.join(", "),
        }
    }

    pub(crate) fn missing(source_name: &str, key: &str) -> Self {
        Self::Missing {
            source_name: source_name.to_string(),
            key: key.to_string(),
        }
    }

    pub(crate) fn invalid(source_name: &str, key: &str, value: impl Display, reason: &str) -> Self {
        Self::Invalid {
            source_name: source_name.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}
