//! The analysis as a table, one row per measurement, for pandas, polars or DuckDB: the same
//! numbers as the JSON report's `analysis`, `population` and `pooled_over`, as CSV or Parquet.

use serde_json::{Map, Value, json};

use super::SweepReport;
use super::export::tables_to_csv;
use super::export_parquet::{ColumnKind, ParquetExportError, tables_to_parquet};

fn number(value: Option<f64>) -> Value {
    value
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// The rows and the header, axes' ψ columns in the report's axis order.
fn tables_and_header(report: &SweepReport) -> (Vec<Map<String, Value>>, Vec<String>) {
    let mut header: Vec<String> = [
        "sweep",
        "measurement",
        "heuristic",
        "analysed",
        "left_out_budget_exhausted",
        "left_out_diverged",
        "left_out_unfinished",
        "pooled_over",
        "vacuous",
        "width_slope",
        "width_slope_ci95_low",
        "width_slope_ci95_high",
        "width_slope_fit",
        "width_slope_points",
        "kendall_tau_a",
        "kendall_tau_b",
    ]
    .iter()
    .map(|name| name.to_string())
    .collect();
    if let Some(first) = report.analysis.first() {
        for axis in &first.granulated_tau {
            header.push(format!("psi.{}", axis.axis));
            header.push(format!("psi_groups.{}", axis.axis));
        }
    }
    header.extend(
        [
            "psi",
            "robust_sign_error_mean",
            "robust_sign_error_worst",
            "robust_sign_error_environments",
            "pgdl_cmi",
        ]
        .iter()
        .map(|name| name.to_string()),
    );
    let population = &report.population;
    let tables = report
        .analysis
        .iter()
        .map(|analysis| {
            let slope = analysis.width_slope;
            let robust = analysis.robust_sign_error;
            let mut row = Map::new();
            row.insert("sweep".into(), json!(report.sweep));
            row.insert("measurement".into(), json!(analysis.measurement));
            row.insert("heuristic".into(), json!(analysis.heuristic));
            row.insert("analysed".into(), json!(population.analysed));
            row.insert(
                "left_out_budget_exhausted".into(),
                json!(population.left_out_budget_exhausted),
            );
            row.insert(
                "left_out_diverged".into(),
                json!(population.left_out_diverged),
            );
            row.insert(
                "left_out_unfinished".into(),
                json!(population.left_out_unfinished),
            );
            row.insert("pooled_over".into(), json!(report.pooled_over.join(" ")));
            row.insert("vacuous".into(), json!(analysis.vacuous));
            row.insert("width_slope".into(), number(slope.map(|fit| fit.slope)));
            row.insert(
                "width_slope_ci95_low".into(),
                number(slope.and_then(|fit| fit.low)),
            );
            row.insert(
                "width_slope_ci95_high".into(),
                number(slope.and_then(|fit| fit.high)),
            );
            row.insert(
                "width_slope_fit".into(),
                slope.map_or(Value::Null, |fit| json!(fit.fit)),
            );
            row.insert(
                "width_slope_points".into(),
                slope.map_or(Value::Null, |fit| json!(fit.trials)),
            );
            row.insert("kendall_tau_a".into(), number(analysis.kendall_tau_a));
            row.insert("kendall_tau_b".into(), number(analysis.kendall_tau_b));
            for axis in &analysis.granulated_tau {
                row.insert(format!("psi.{}", axis.axis), number(axis.psi));
                row.insert(format!("psi_groups.{}", axis.axis), json!(axis.groups));
            }
            row.insert("psi".into(), number(analysis.psi));
            row.insert(
                "robust_sign_error_mean".into(),
                number(robust.map(|robust| robust.mean)),
            );
            row.insert(
                "robust_sign_error_worst".into(),
                number(robust.map(|robust| robust.worst)),
            );
            row.insert(
                "robust_sign_error_environments".into(),
                robust.map_or(Value::Null, |robust| json!(robust.environments)),
            );
            row.insert("pgdl_cmi".into(), number(analysis.pgdl_cmi));
            row
        })
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
    use crate::report::analysis::{AxisGranulated, MeasurementAnalysis};
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
