//! A trial's resolved configuration as dotted keys (`model.width`, `probe.noise_form`, …): the
//! grid axes of a sweep are the keys whose value differs between its trials, whatever they are.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::store::TrialRow;

/// The key of the replicate axis, which is never a hyperparameter.
pub const SEED: &str = "seed";

/// The key of width, which every report puts first.
pub const WIDTH: &str = "model.width";

/// A configuration flattened to dotted keys; lists stay whole.
pub type Parameters = BTreeMap<String, Value>;

pub fn flattened(row: &TrialRow) -> Parameters {
    let mut parameters = Parameters::new();
    if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&row.params) {
        for (key, value) in &fields {
            flatten(key, value, &mut parameters);
        }
    }
    parameters
}

fn flatten(prefix: &str, value: &Value, into: &mut Parameters) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                flatten(&format!("{prefix}.{key}"), field, into);
            }
        }
        other => {
            into.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The keys whose value differs between trials, the seed left out, width first.
pub fn varied(trials: &[Parameters]) -> Vec<String> {
    let mut keys: Vec<String> = trials
        .iter()
        .flat_map(|parameters| parameters.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    let mut varied: Vec<String> = keys
        .into_iter()
        .filter(|key| key != SEED)
        .filter(|key| {
            let mut values = trials.iter().map(|parameters| parameters.get(key));
            let first = values.next().flatten();
            values.any(|value| value != first)
        })
        .collect();
    varied.sort_by_key(|key| key != WIDTH);
    varied
}

/// One combination of axis values: the (axis, value) pairs as shown, and its trials (indices).
pub type Cell = (Vec<(String, String)>, Vec<usize>);

/// The cells of each combination of `axes` values among `trials`, in axis-value order.
pub fn cells(trials: &[Parameters], axes: &[&str]) -> Vec<Cell> {
    type Key = Vec<(u8, u64, String)>;
    let mut cells: BTreeMap<Key, Cell> = BTreeMap::new();
    for (index, values) in trials.iter().enumerate() {
        let key = axes
            .iter()
            .map(|axis| sort_key(values.get(*axis)))
            .collect();
        cells
            .entry(key)
            .or_insert_with(|| {
                let shown = axes
                    .iter()
                    .map(|axis| (axis.to_string(), text(values.get(*axis))))
                    .collect();
                (shown, Vec::new())
            })
            .1
            .push(index);
    }
    cells.into_values().collect()
}

/// A value as a table shows it: strings without their quotes.
pub fn text(value: Option<&Value>) -> String {
    match value {
        // A key absent from a canonical configuration holds its default there.
        None => "(default)".to_string(),
        Some(Value::Null) => "–".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// Orders numbers by value (before any text) and text alphabetically.
pub fn sort_key(value: Option<&Value>) -> (u8, u64, String) {
    match value.and_then(Value::as_f64) {
        Some(number) => {
            // Flip so that the unsigned order of the bits is the numeric order.
            let bits = number.to_bits();
            let ordered = if number.is_sign_negative() {
                !bits
            } else {
                bits | 1 << 63
            };
            (0, ordered, String::new())
        }
        None => (1, 0, text(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(params: &str) -> TrialRow {
        TrialRow {
            replicate_exit_steps_1: None,
            msd_curve: None,
            trial_id: String::new(),
            state: "done".to_string(),
            outcome: None,
            worker_id: None,
            last_error: None,
            params: params.to_string(),
            numbers: Vec::new(),
        }
    }

    #[test]
    fn the_varied_keys_are_the_grid_axes_width_first_seed_left_out() {
        let trials: Vec<Parameters> = [
            r#"{"seed":0,"model":{"width":16,"depth":2},"probe":{"noise_form":"fixed_total","radii":[1.0]}}"#,
            r#"{"seed":1,"model":{"width":128,"depth":2},"probe":{"radii":[1.0]}}"#,
        ]
        .iter()
        .map(|params| flattened(&row(params)))
        .collect();
        assert_eq!(varied(&trials), ["model.width", "probe.noise_form"]);
        assert_eq!(text(trials[0].get("probe.noise_form")), "fixed_total");
        assert_eq!(text(trials[1].get("probe.noise_form")), "(default)");
        let widths: Vec<_> = trials
            .iter()
            .map(|trial| sort_key(trial.get(WIDTH)))
            .collect();
        assert!(widths[0] < widths[1], "16 before 128, numerically");
        assert!(sort_key(Some(&Value::from(-1.0))) < sort_key(Some(&Value::from(0.5))));
    }
}
