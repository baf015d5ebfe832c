//! One row per trial, every parameter and scalar measurement a column, for pandas, polars or
//! DuckDB: CSV with a header, JSON Lines, or Parquet (typed columns, see [`to_parquet`]).
//!
//! The parameters are the trial's resolved configuration flattened to dotted keys
//! (`training.learning_rate`, `data.train_size`, ...), so every setting of the sweep file is a
//! column, not only the grid axes.

use serde_json::{Map, Value};

use crate::store::{TrialRow, trial_row_numbers};

pub use super::export_parquet::{ParquetExportError, to_parquet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
    Parquet,
}

/// The columns that describe the trial rather than measure it.
pub(super) const IDENTITY_COLUMNS: [&str; 5] =
    ["trial_id", "state", "outcome", "worker_id", "last_error"];

/// A trial as named columns: identity, measurements (the `trial_results` view), then parameters.
fn columns_of(row: &TrialRow) -> Map<String, Value> {
    let mut columns = Map::new();
    let text = |value: &Option<String>| value.clone().map(Value::String).unwrap_or(Value::Null);
    columns.insert("trial_id".into(), Value::String(row.trial_id.clone()));
    columns.insert("state".into(), Value::String(row.state.clone()));
    columns.insert("outcome".into(), text(&row.outcome));
    columns.insert("worker_id".into(), text(&row.worker_id));
    columns.insert("last_error".into(), text(&row.last_error));
    for (name, value) in trial_row_numbers().iter().zip(&row.numbers) {
        let value = value
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null);
        columns.insert((*name).to_string(), value);
    }
    for (key, value) in super::parameters::flattened(row) {
        // Lists (probe radii, say) stay one column, as JSON text.
        let value = match value {
            Value::Array(_) => Value::String(value.to_string()),
            scalar => scalar,
        };
        columns.insert(format!("param.{key}"), value);
    }
    columns
}

/// JSON Lines: one object per trial.
pub fn to_jsonl(rows: &[TrialRow]) -> String {
    let mut text = String::new();
    for row in rows {
        text.push_str(&Value::Object(columns_of(row)).to_string());
        text.push('\n');
    }
    text
}

/// Every trial as named columns, and the column names in export order: identity, measurements,
/// then the parameter keys sorted. The parameter columns are the union over the sweep's trials (a
/// grid axis can add a key the base configuration lacks), so a trial may lack some of them.
pub(super) fn tables_and_header(rows: &[TrialRow]) -> (Vec<Map<String, Value>>, Vec<String>) {
    let tables: Vec<Map<String, Value>> = rows.iter().map(columns_of).collect();
    let mut header: Vec<String> = IDENTITY_COLUMNS
        .iter()
        .chain(trial_row_numbers().iter())
        .map(|name| name.to_string())
        .collect();
    let mut parameters: Vec<String> = tables
        .iter()
        .flat_map(|table| {
            table
                .keys()
                .filter(|key| key.starts_with("param."))
                .cloned()
        })
        .collect();
    parameters.sort();
    parameters.dedup();
    header.extend(parameters);
    (tables, header)
}

/// CSV with a header row; a parameter a trial lacks is an empty field.
pub fn to_csv(rows: &[TrialRow]) -> String {
    let (tables, header) = tables_and_header(rows);
    tables_to_csv(&tables, &header)
}

/// Rows of named values as CSV under `header`; a missing or null value is an empty field.
pub(super) fn tables_to_csv(tables: &[Map<String, Value>], header: &[String]) -> String {
    let mut text = header
        .iter()
        .map(|name| csv_field(name))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    for table in tables {
        let fields: Vec<String> = header
            .iter()
            .map(|name| match table.get(name) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(text)) => csv_field(text),
                Some(other) => csv_field(&other.to_string()),
            })
            .collect();
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    text
}

/// RFC 4180 quoting: a field with a comma, quote or line break is quoted, quotes doubled.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A trial with only `test_error` measured (failed, with an error message, when it is None).
    pub(in crate::report) fn row(
        trial_id: &str,
        test_error: Option<f64>,
        params: &str,
    ) -> TrialRow {
        match test_error {
            Some(value) => TrialRow::converged(trial_id, params, &[("test_error", value)]),
            None => TrialRow {
                state: "failed".to_string(),
                outcome: None,
                last_error: Some("data file \"x.idx\" missing, attempt 1".to_string()),
                ..TrialRow::converged(trial_id, params, &[])
            },
        }
    }

    #[test]
    fn csv_has_a_column_per_measurement_and_parameter_and_quotes_what_needs_it() {
        let rows = [
            row(
                "a",
                Some(0.25),
                r#"{"seed":1,"model":{"width":8},"probe":{"radii":[0.1,0.2]}}"#,
            ),
            row("b", None, r#"{"seed":2,"model":{"width":16,"bias":true}}"#),
        ];
        let text = to_csv(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(&header[..3], ["trial_id", "state", "outcome"]);
        let column = |name: &str| {
            header
                .iter()
                .position(|candidate| *candidate == name)
                .unwrap_or_else(|| panic!("column {name} in {header:?}"))
        };
        assert!(column("test_error") < column("param.model.bias"));
        assert_eq!(
            header.len(),
            IDENTITY_COLUMNS.len() + trial_row_numbers().len() + 4,
            "parameters, the union over trials: model.bias, model.width, probe.radii, seed"
        );
        assert!(lines[1].contains(",0.25,"), "{}", lines[1]);
        assert!(
            lines[1].contains("\"[0.1,0.2]\""),
            "a list is one quoted JSON column: {}",
            lines[1]
        );
        assert!(
            lines[2].contains("\"data file \"\"x.idx\"\" missing, attempt 1\""),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn jsonl_is_one_object_per_trial_with_nulls_for_missing_values() {
        let rows = [row("a", Some(0.25), r#"{"seed":1,"model":{"width":8}}"#)];
        let text = to_jsonl(&rows);
        assert_eq!(text.lines().count(), 1);
        let object: Value = serde_json::from_str(text.trim_end()).expect("valid JSON");
        assert_eq!(object["test_error"], 0.25);
        assert_eq!(object["param.model.width"], 8);
        assert_eq!(object["train_error"], Value::Null);
        assert_eq!(object["trial_id"], "a");
    }
}
