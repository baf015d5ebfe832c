//! Grid axes: a list of values, an arithmetic range, or an evenly or log-spaced range.
//!
//! ```toml
//! [grid]
//! model.width = { start = 16, stop = 256, num = 5, spacing = "log" }   # 16, 32, 64, 128, 256
//! training.learning_rate = [0.05, 0.1]
//! seed = { start = 0, stop = 2 }                                       # 0, 1, 2 (stop included)
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::SweepError;

/// Values along one grid axis; the trial configuration's types are checked at expansion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Axis {
    pub values: Vec<toml::Value>,
}

/// More values than this on one axis is certainly a mistake (a step far too small).
const MAX_AXIS_LENGTH: u64 = 1_000_000;

const RANGE_KEYS: [&str; 5] = ["start", "stop", "step", "num", "spacing"];

/// Flattens the `[grid]` table (dotted keys become nested tables in TOML) into axes by path.
pub fn parse_grid(
    source_name: &str,
    grid: &toml::Table,
) -> Result<BTreeMap<String, Axis>, SweepError> {
    let mut axes = BTreeMap::new();
    collect_axes(source_name, "", grid, &mut axes)?;
    Ok(axes)
}

fn collect_axes(
    source_name: &str,
    prefix: &str,
    table: &toml::Table,
    axes: &mut BTreeMap<String, Axis>,
) -> Result<(), SweepError> {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let grid_key = format!("grid.{path}");
        let axis = match value {
            toml::Value::Array(values) => list_axis(source_name, &grid_key, values)?,
            toml::Value::Table(inner) if inner.contains_key("start") => {
                range_axis(source_name, &grid_key, inner)?
            }
            toml::Value::Table(inner) => {
                collect_axes(source_name, &path, inner, axes)?;
                continue;
            }
            scalar => {
                return Err(SweepError::invalid(
                    source_name,
                    &grid_key,
                    scalar,
                    "a grid axis must be a list or a range table; set a single value in its section instead",
                ));
            }
        };
        axes.insert(path, axis);
    }
    Ok(())
}

fn list_axis(source_name: &str, key: &str, values: &[toml::Value]) -> Result<Axis, SweepError> {
    if values.is_empty() {
        return Err(SweepError::invalid(
            source_name,
            key,
            "[]",
            "an axis needs at least one value",
        ));
    }
    for value in values {
        if matches!(value, toml::Value::Array(_) | toml::Value::Table(_)) {
            return Err(SweepError::invalid(
                source_name,
                key,
                value,
                "axis values must be scalars",
            ));
        }
        if let toml::Value::Float(number) = value
            && !number.is_finite()
        {
            return Err(SweepError::invalid(
                source_name,
                key,
                value,
                "axis values must be finite numbers",
            ));
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    for value in values {
        if !seen.insert(value.to_string()) {
            return Err(SweepError::invalid(
                source_name,
                key,
                value,
                "appears twice on this axis",
            ));
        }
    }
    Ok(Axis {
        values: values.to_vec(),
    })
}

fn number(
    source_name: &str,
    key: &str,
    table: &toml::Table,
    name: &str,
) -> Result<Option<f64>, SweepError> {
    let field_key = format!("{key}.{name}");
    match table.get(name) {
        None => Ok(None),
        Some(toml::Value::Integer(value)) => Ok(Some(*value as f64)),
        Some(toml::Value::Float(value)) if value.is_finite() => Ok(Some(*value)),
        Some(other) => Err(SweepError::invalid(
            source_name,
            &field_key,
            other,
            "must be a finite number",
        )),
    }
}

fn range_axis(source_name: &str, key: &str, table: &toml::Table) -> Result<Axis, SweepError> {
    for name in table.keys() {
        if !RANGE_KEYS.contains(&name.as_str()) {
            return Err(SweepError::unknown_key(
                source_name,
                &format!("{key}.{name}"),
                &RANGE_KEYS,
            ));
        }
    }
    let integers = matches!(table.get("start"), Some(toml::Value::Integer(_)))
        && matches!(table.get("stop"), Some(toml::Value::Integer(_)))
        && !matches!(table.get("step"), Some(toml::Value::Float(_)));
    let start = number(source_name, key, table, "start")?.unwrap_or_default();
    let Some(stop) = number(source_name, key, table, "stop")? else {
        return Err(SweepError::missing(source_name, &format!("{key}.stop")));
    };
    let step = number(source_name, key, table, "step")?;
    let num = match table.get("num") {
        None => None,
        Some(toml::Value::Integer(value)) if (1..=MAX_AXIS_LENGTH as i64).contains(value) => {
            Some(*value as usize)
        }
        Some(other) => {
            return Err(SweepError::invalid(
                source_name,
                &format!("{key}.num"),
                other,
                "must be an integer from 1 to 1000000",
            ));
        }
    };
    let spacing = match table.get("spacing") {
        None => "linear",
        Some(toml::Value::String(value)) if value == "linear" || value == "log" => value.as_str(),
        Some(other) => {
            return Err(SweepError::invalid(
                source_name,
                &format!("{key}.spacing"),
                other,
                "must be \"linear\" or \"log\"",
            ));
        }
    };
    if stop < start {
        return Err(SweepError::invalid(
            source_name,
            &format!("{key}.stop"),
            stop,
            "must not be less than start",
        ));
    }

    let numbers = match (step, num) {
        (Some(_), Some(_)) => {
            return Err(SweepError::invalid(
                source_name,
                key,
                "{ step, num }",
                "give either `step` or `num`, not both",
            ));
        }
        (Some(step), None) => {
            if spacing == "log" {
                return Err(SweepError::invalid(
                    source_name,
                    &format!("{key}.spacing"),
                    "\"log\"",
                    "log spacing takes `num`, not `step`",
                ));
            }
            if step <= 0.0 {
                return Err(SweepError::invalid(
                    source_name,
                    &format!("{key}.step"),
                    step,
                    "must be greater than 0",
                ));
            }
            let count = ((stop - start) / step + 1e-9).floor() as u64 + 1;
            if count > MAX_AXIS_LENGTH {
                return Err(SweepError::invalid(
                    source_name,
                    &format!("{key}.step"),
                    step,
                    "gives more than 1000000 values on one axis",
                ));
            }
            (0..count)
                .map(|index| start + step * index as f64)
                .collect::<Vec<_>>()
        }
        (None, Some(num)) => spaced(source_name, key, start, stop, num, spacing == "log")?,
        (None, None) => {
            if !integers {
                return Err(SweepError::invalid(
                    source_name,
                    key,
                    "{ start, stop }",
                    "a range of non-integers needs `step` or `num`",
                ));
            }
            let count = (stop - start) as u64 + 1;
            if count > MAX_AXIS_LENGTH {
                return Err(SweepError::invalid(
                    source_name,
                    key,
                    stop,
                    "gives more than 1000000 values on one axis",
                ));
            }
            (0..count).map(|index| start + index as f64).collect()
        }
    };

    let mut values: Vec<toml::Value> = Vec::with_capacity(numbers.len());
    for number in numbers {
        let value = if integers {
            toml::Value::Integer(number.round() as i64)
        } else {
            toml::Value::Float(round_to_significant_digits(number))
        };
        // Rounding a log-spaced integer range can repeat neighbours; an axis lists each once.
        if values.last() != Some(&value) {
            values.push(value);
        }
    }
    Ok(Axis { values })
}

fn spaced(
    source_name: &str,
    key: &str,
    start: f64,
    stop: f64,
    num: usize,
    log: bool,
) -> Result<Vec<f64>, SweepError> {
    if num == 1 {
        return Ok(vec![start]);
    }
    if log && start <= 0.0 {
        return Err(SweepError::invalid(
            source_name,
            &format!("{key}.start"),
            start,
            "log spacing needs start greater than 0",
        ));
    }
    let last = (num - 1) as f64;
    let values = (0..num)
        .map(|index| {
            let fraction = index as f64 / last;
            if log {
                (start.ln() + fraction * (stop.ln() - start.ln())).exp()
            } else {
                start + fraction * (stop - start)
            }
        })
        .collect();
    Ok(values)
}

/// Keeps computed values readable (0.1, not 0.10000000000000002) in ids, tables and reports.
fn round_to_significant_digits(value: f64) -> f64 {
    format!("{value:.11e}").parse().unwrap_or(value)
}
