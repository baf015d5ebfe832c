//! Grid expansion: every point of the grid applied to the base configuration, validated, with a
//! stable id derived from the sweep name and the trial's canonical parameters.

use proto::{DataConfig, MeasureConfig, ModelConfig, ProbeConfig, TrainingConfig, TrialConfig};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{SweepError, SweepFile};

/// One trial of a sweep, ready to store.
#[derive(Debug, Clone)]
pub struct PlannedTrial {
    pub id: String,
    /// Position in the grid's deterministic order; workers lease trials in this order.
    pub ordinal: u64,
    pub config: TrialConfig,
    pub config_json: String,
}

/// A sweep file whose grid has been checked point by point. Trials are expanded on demand, in
/// grid order, so a grid of 10^5 points never has to sit in memory at once.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub sweep: SweepFile,
    source_name: String,
    trial_count: u64,
}

impl SweepPlan {
    /// Parses a sweep file and checks every point of its grid; refuses grids larger than
    /// `max_trials` before expanding anything.
    pub fn from_toml(source_name: &str, text: &str, max_trials: u64) -> Result<Self, SweepError> {
        let sweep = SweepFile::parse(source_name, text)?;
        if sweep.axes.is_empty() {
            return Err(SweepError::invalid(
                source_name,
                "grid",
                "{}",
                "the grid has no axes; give at least one, for example `seed = [0, 1, 2]`",
            ));
        }
        let trial_count = sweep.trial_count();
        if trial_count > max_trials {
            return Err(SweepError::TooManyTrials {
                source_name: source_name.to_string(),
                count: trial_count,
                limit: max_trials,
            });
        }
        let plan = Self {
            sweep,
            source_name: source_name.to_string(),
            trial_count,
        };
        for trial in plan.trials() {
            trial?;
        }
        Ok(plan)
    }

    pub fn trial_count(&self) -> u64 {
        self.trial_count
    }

    /// The trials in grid order (the last axis varies fastest).
    pub fn trials(&self) -> impl Iterator<Item = Result<PlannedTrial, SweepError>> + '_ {
        (0..self.trial_count).map(|ordinal| self.trial_at(ordinal))
    }

    /// Every trial at once, for small grids and tests.
    pub fn all_trials(&self) -> Result<Vec<PlannedTrial>, SweepError> {
        self.trials().collect()
    }

    /// The trial at one position of the grid order.
    pub fn trial_at(&self, ordinal: u64) -> Result<PlannedTrial, SweepError> {
        let sweep = &self.sweep;
        // Mixed-radix decoding of the ordinal, last axis fastest.
        let mut remainder = ordinal;
        let mut point = Vec::with_capacity(sweep.axes.len());
        for (path, axis) in sweep.axes.iter().rev() {
            let length = axis.values.len() as u64;
            point.push((path.as_str(), &axis.values[(remainder % length) as usize]));
            remainder /= length;
        }
        point.reverse();

        let config =
            resolve_point(&sweep.base, &point).map_err(|message| SweepError::AtGridPoint {
                source_name: self.source_name.clone(),
                point: ordinal,
                assignment: point
                    .iter()
                    .map(|(path, value)| format!("{path} = {value}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                message,
            })?;
        let config_json = config.to_canonical_json();
        Ok(PlannedTrial {
            id: trial_id(&sweep.name, &config_json),
            ordinal,
            config,
            config_json,
        })
    }
}

/// The trial id: the first 128 bits of SHA-256 over the sweep name and the canonical parameters.
pub fn trial_id(sweep_name: &str, config_json: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(sweep_name.as_bytes());
    hasher.update([0u8]);
    hasher.update(config_json.as_bytes());
    hex::encode(&hasher.finalize()[..16])
}

/// Applies one grid point to the base configuration and checks the result. Errors are messages
/// naming the key (the caller adds the file and the grid point).
fn resolve_point(
    base: &toml::Table,
    point: &[(&str, &toml::Value)],
) -> Result<TrialConfig, String> {
    let mut table = base.clone();
    for (path, value) in point {
        set_path(&mut table, path, (*value).clone());
    }

    let seed = match table.get("seed") {
        None => 0,
        Some(toml::Value::Integer(seed)) if *seed >= 0 => *seed as u64,
        Some(other) => {
            return Err(format!(
                "`seed` = {other} is invalid: must be an integer ≥ 0"
            ));
        }
    };
    let config = TrialConfig {
        seed,
        data: section::<DataConfig>(&table, "data")?,
        model: section::<ModelConfig>(&table, "model")?,
        training: section::<TrainingConfig>(&table, "training")?,
        probe: section::<ProbeConfig>(&table, "probe")?,
        measure: match table.get("measure") {
            None => MeasureConfig::default(),
            Some(_) => section::<MeasureConfig>(&table, "measure")?,
        },
    };
    config.validate().map_err(|error| error.to_string())?;
    Ok(config)
}

fn section<T: DeserializeOwned>(table: &toml::Table, name: &str) -> Result<T, String> {
    let Some(value) = table.get(name) else {
        return Err(format!("missing required section `[{name}]`"));
    };
    value
        .clone()
        .try_into()
        .map_err(|error: toml::de::Error| format!("in `[{name}]`: {}", error.message().trim_end()))
}

fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return;
    };
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(inner) = entry else {
            return;
        };
        current = inner;
    }
    current.insert(last.to_string(), value);
}
