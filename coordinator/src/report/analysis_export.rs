//! The analysis as a table, one row per measurement, for pandas, polars or DuckDB: the same
//! numbers as the JSON report's `analysis`, `population` and `pooled_over`, as CSV or Parquet.

use serde_json::{Map, Value, json};

use super::SweepReport;
use super::analysis::MeasurementAnalysis;
use super::export::tables_to_csv;
use super::export_parquet::{ColumnKind, ParquetExportError, tables_to_parquet};

fn number(value: Option<f64>) -> Value {
    value
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// One measurement's columns in order, the axes' ψ in the report's axis order.
fn columns(report: &SweepReport, analysis: &MeasurementAnalysis) -> Vec<(String, Value)> {
    let population = &report.population;
    let slope = analysis.width_slope;
    let robust = analysis.robust_sign_error;
    let columns: Vec<(&str, Value)> = vec![
        ("sweep", json!(report.sweep)),
        ("measurement", json!(analysis.measurement)),
        ("heuristic", json!(analysis.heuristic)),
        ("analysed", json!(population.analysed)),
        (
            "left_out_budget_exhausted",
            json!(population.left_out_budget_exhausted),
        ),
        ("left_out_diverged", json!(population.left_out_diverged)),
        ("left_out_unfinished", json!(population.left_out_unfinished)),
        ("pooled_over", json!(report.pooled_over.join(" "))),
        ("vacuous", json!(analysis.vacuous)),
        ("width_slope", number(slope.map(|fit| fit.slope))),
        (
            "width_slope_ci95_low",
            number(slope.and_then(|fit| fit.low)),
        ),
        (
            "width_slope_ci95_high",
            number(slope.and_then(|fit| fit.high)),
        ),
        (
            "width_slope_fit",
            slope.map_or(Value::Null, |fit| json!(fit.fit)),
        ),
        (
            "width_slope_points",
            slope.map_or(Value::Null, |fit| json!(fit.trials)),
        ),
        ("kendall_tau_a", number(analysis.kendall_tau_a)),
        ("kendall_tau_b", number(analysis.kendall_tau_b)),
    ];
    let mut named: Vec<(String, Value)> = columns
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    for axis in &analysis.granulated_tau {
        named.push((format!("psi.{}", axis.axis), number(axis.psi)));
        named.push((format!("psi_groups.{}", axis.axis), json!(axis.groups)));
    }
    let tail = [
        ("psi", number(analysis.psi)),
        ("robust_sign_error_mean", number(robust.map(|r| r.mean))),
        ("robust_sign_error_worst", number(robust.map(|r| r.worst))),
        (
            "robust_sign_error_environments",
            robust.map_or(Value::Null, |r| json!(r.environments)),
        ),
        ("pgdl_cmi", number(analysis.pgdl_cmi)),
    ];
    named.extend(
        tail.into_iter()
            .map(|(name, value)| (name.to_string(), value)),
    );
    named
}

/// The rows and the header (the first row's columns; no rows, no header).
fn tables_and_header(report: &SweepReport) -> (Vec<Map<String, Value>>, Vec<String>) {
    let rows: Vec<Vec<(String, Value)>> = report
        .analysis
        .iter()
        .map(|analysis| columns(report, analysis))
        .collect();
    let header = rows
        .first()
        .map(|row| row.iter().map(|(name, _)| name.clone()).collect())
        .unwrap_or_default();
    let tables = rows
        .into_iter()
        .map(|row| row.into_iter().collect())
        .collect();
    (tables, header)
}

/// The analysis as CSV with a header row.
pub fn analysis_csv(report: &SweepReport) -> String {
    let (tables, header) = tables_and_header(report);
    tables_to_csv(&tables, &header)
}

/// The analysis as a Parquet file; every statistic a DOUBLE, counts INT64.
pub fn analysis_parquet(report: &SweepReport) -> Result<Vec<u8>, ParquetExportError> {
    let (tables, header) = tables_and_header(report);
    tables_to_parquet("measurement_analysis", &tables, &header, |name| {
        let counts = name.starts_with("psi_groups.")
            || name.starts_with("left_out_")
            || matches!(
                name,
                "analysed" | "vacuous" | "width_slope_points" | "robust_sign_error_environments"
            );
        let text = matches!(
            name,
            "sweep" | "measurement" | "pooled_over" | "width_slope_fit"
        );
        Some(if counts {
            ColumnKind::Integer
        } else if text {
            ColumnKind::Text
        } else if name == "heuristic" {
            ColumnKind::Boolean
        } else {
            ColumnKind::Double
        })
    })
}

#[cfg(test)]
mod tests {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;
    use crate::report::analysis::AxisGranulated;
    use crate::report::robustness::RobustSignError;

    fn report() -> SweepReport {
        let mut report = SweepReport::empty("s");
        report.population.analysed = 12;
        report.pooled_over = vec!["seed".into()];
        report.analysis = vec![MeasurementAnalysis {
            measurement: "vc_capacity".into(),
            heuristic: false,
            vacuous: 0,
            width_slope: None,
            cell_slopes: Vec::new(),
            kendall_tau_a: Some(0.25),
            kendall_tau_b: None,
            granulated_tau: vec![AxisGranulated {
                axis: "model.width".into(),
                psi: Some(0.5),
                groups: 3,
            }],
            psi: Some(0.5),
            robust_sign_error: Some(RobustSignError {
                mean: 0.125,
                worst: 0.75,
                environments: 4,
            }),
            pgdl_cmi: Some(12.5),
        }];
        report
    }

    #[test]
    fn csv_and_parquet_carry_the_json_numbers() {
        let report = report();
        let csv = analysis_csv(&report);
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        let row: Vec<&str> = lines.next().expect("a row").split(',').collect();
        let field = |name: &str| row[header.iter().position(|h| *h == name).expect(name)];
        assert_eq!(field("measurement"), "vc_capacity");
        assert_eq!(field("analysed"), "12");
        assert_eq!(field("kendall_tau_a"), "0.25");
        assert_eq!(field("kendall_tau_b"), "");
        assert_eq!(field("psi.model.width"), "0.5");
        assert_eq!(field("psi_groups.model.width"), "3");
        assert_eq!(field("robust_sign_error_worst"), "0.75");
        assert_eq!(field("pgdl_cmi"), "12.5");

        let bytes = analysis_parquet(&report).expect("parquet");
        let mut file = tempfile::tempfile().expect("a temporary file");
        std::io::Write::write_all(&mut file, &bytes).expect("written");
        let reader = SerializedFileReader::new(file).expect("readable");
        let row = reader
            .get_row_iter(None)
            .expect("rows")
            .next()
            .expect("a row")
            .expect("decodable");
        let text = row.to_string();
        assert!(text.contains("pgdl_cmi: 12.5"), "{text}");
        assert!(text.contains("psi_groups.model.width: 3"), "{text}");
        assert!(text.contains("heuristic: false"), "{text}");
    }
}
