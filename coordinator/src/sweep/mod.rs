//! Sweep files: parsing, validation and grid expansion into trials.
//!
//! A sweep file is TOML: a `name`, the base trial configuration in the sections `[data]`,
//! `[model]`, `[training]`, `[probe]` and `[measure]`, and a `[grid]` whose keys are dotted paths
//! of scalars in those sections (or `seed`) and whose values are axes (lists or ranges). Every
//! point of the grid is one trial.

mod axis;
mod error;
mod expand;

pub use axis::Axis;
pub use error::SweepError;
pub use expand::{PlannedTrial, SweepPlan};

use std::collections::BTreeMap;

/// The default refusal threshold for a grid's size; the coordinator can be configured otherwise.
pub const DEFAULT_MAX_TRIALS: u64 = 1_000_000;

/// The default number of times a trial is leased before it is failed.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

const SECTIONS: [&str; 5] = ["data", "model", "training", "probe", "measure"];
const TOP_LEVEL_KEYS: [&str; 9] = [
    "name",
    "description",
    "seed",
    "max_attempts",
    "data",
    "model",
    "training",
    "probe",
    "measure",
];

/// A parsed sweep file, before expansion.
#[derive(Debug, Clone)]
pub struct SweepFile {
    pub name: String,
    pub max_attempts: u32,
    /// The base trial configuration as TOML (sections and `seed`), before grid values are applied.
    pub base: toml::Table,
    /// Grid axes by dotted path, in sorted path order so expansion is deterministic.
    pub axes: BTreeMap<String, Axis>,
    /// A hash of the file's meaning (not its formatting), to tell an identical resubmission
    /// from a changed file.
    pub spec_hash: String,
    pub source_text: String,
}

impl SweepFile {
    /// Parses and checks a sweep file's text; `source_name` is used in error messages.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, SweepError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| SweepError::syntax(source_name, error))?;

        let grid = match table.remove("grid") {
            None => toml::Table::new(),
            Some(toml::Value::Table(grid)) => grid,
            Some(other) => {
                return Err(SweepError::invalid(
                    source_name,
                    "grid",
                    &other,
                    "must be a table of axes",
                ));
            }
        };
        for key in table.keys() {
            if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
                return Err(SweepError::unknown_key(source_name, key, &TOP_LEVEL_KEYS));
            }
        }

        let name = match table.remove("name") {
            Some(toml::Value::String(name)) => name,
            Some(other) => {
                return Err(SweepError::invalid(
                    source_name,
                    "name",
                    &other,
                    "must be a string",
                ));
            }
            None => return Err(SweepError::missing(source_name, "name")),
        };
        check_sweep_name(source_name, &name)?;
        table.remove("description");

        let max_attempts = match table.remove("max_attempts") {
            None => DEFAULT_MAX_ATTEMPTS,
            Some(toml::Value::Integer(value)) if (1..=1000).contains(&value) => value as u32,
            Some(other) => {
                return Err(SweepError::invalid(
                    source_name,
                    "max_attempts",
                    &other,
                    "must be an integer from 1 to 1000",
                ));
            }
        };
        for section in SECTIONS {
            match table.get(section) {
                None | Some(toml::Value::Table(_)) => {}
                Some(other) => {
                    return Err(SweepError::invalid(
                        source_name,
                        section,
                        other,
                        "must be a table",
                    ));
                }
            }
        }

        let axes = axis::parse_grid(source_name, &grid)?;
        for path in axes.keys() {
            check_axis_path(source_name, &table, path)?;
        }

        let spec_hash = spec_hash(&name, max_attempts, &table, &axes);
        Ok(Self {
            name,
            max_attempts,
            base: table,
            axes,
            spec_hash,
            source_text: text.to_string(),
        })
    }

    /// The number of trials the grid expands to (saturating: a huge grid is refused, not wrapped).
    pub fn trial_count(&self) -> u64 {
        self.axes.values().fold(1u64, |count, axis| {
            count.saturating_mul(axis.values.len() as u64)
        })
    }
}

fn check_sweep_name(source_name: &str, name: &str) -> Result<(), SweepError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    // Not starting with '.': the name is a directory of checkpoint files, and ".." is not one.
    if name.is_empty() || name.len() > 128 || !name.chars().all(allowed) || name.starts_with('.') {
        return Err(SweepError::invalid(
            source_name,
            "name",
            toml::Value::String(name.to_string()),
            "must be 1 to 128 characters of letters, digits, '-', '_' or '.', not starting with '.'",
        ));
    }
    Ok(())
}

/// An axis must name `seed` or a key inside one of the sections, and must not replace a table
/// or a list (only scalars are grid axes).
fn check_axis_path(source_name: &str, base: &toml::Table, path: &str) -> Result<(), SweepError> {
    let key = format!("grid.{path}");
    if path == "seed" {
        return Ok(());
    }
    let mut parts = path.split('.');
    let section = parts.next().unwrap_or_default();
    if !SECTIONS.contains(&section) {
        return Err(SweepError::UnknownAxis {
            source_name: source_name.to_string(),
            key,
            reason: format!(
                "must start with `seed` or one of the sections {}",
                SECTIONS.join(", ")
            ),
        });
    }
    let mut current = base.get(section);
    for part in parts {
        current = match current {
            Some(toml::Value::Table(table)) => table.get(part),
            _ => None,
        };
    }
    match current {
        Some(toml::Value::Table(_)) | Some(toml::Value::Array(_)) => Err(SweepError::UnknownAxis {
            source_name: source_name.to_string(),
            key,
            reason: "names a table or a list; only scalars can be grid axes".to_string(),
        }),
        // A path absent from the base is allowed: the grid supplies it, and deserializing the
        // expanded configuration refuses names that are not configuration keys.
        _ => Ok(()),
    }
}

fn spec_hash(
    name: &str,
    max_attempts: u32,
    base: &toml::Table,
    axes: &BTreeMap<String, Axis>,
) -> String {
    use sha2::{Digest, Sha256};
    // toml::Table is ordered by key, so this serialization is canonical for equal meanings.
    let canonical = serde_json::json!({
        "name": name,
        "max_attempts": max_attempts,
        "base": base,
        "axes": axes,
    });
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[cfg(test)]
mod tests;
