//! The width × axis tables of a report: one per other axis that varies, a row per cell.

use super::SweepReport;
use super::groups::Grouping;
use super::statistics::MeanInterval;

/// Columns of a crossed table: header and measurement.
const COLUMNS: [(&str, &str); 5] = [
    ("err gap", "error_gap"),
    ("stay p(r₁)", "stay_probability_1"),
    ("stay p(r₂)", "stay_probability_2"),
    ("median exit(r₁)", "median_exit_step_1"),
    ("λ_max", "hessian_lambda_max"),
];

fn cell_text(summary: Option<MeanInterval>) -> String {
    match summary {
        None => "–".to_string(),
        Some(MeanInterval {
            mean,
            std_dev: Some(std_dev),
            ..
        }) => format!("{mean:.3}±{std_dev:.3}"),
        Some(MeanInterval { mean, .. }) => format!("{mean:.3}"),
    }
}

fn crossed_table(grouping: &Grouping) -> String {
    let mut header: Vec<String> = grouping.axes.clone();
    header.push("done".to_string());
    header.extend(COLUMNS.iter().map(|(title, _)| title.to_string()));
    let mut rows = vec![header];
    for cell in &grouping.cells {
        let mut row: Vec<String> = cell.axes.iter().map(|(_, value)| value.clone()).collect();
        row.push(format!("{}/{}", cell.summary.done, cell.summary.trials));
        for (_, measurement) in COLUMNS {
            row.push(cell_text(cell.summary.measurement(measurement)));
        }
        rows.push(row);
    }
    super::format::aligned(&rows)
}

/// What a group of `axes` pools over: the seeds, and every varied axis not among them.
pub fn pooled_label(report: &SweepReport, axes: &[String]) -> String {
    let pooled: Vec<&str> = report
        .pooled_over
        .iter()
        .filter(|axis| !axes.contains(axis) && *axis != super::parameters::SEED)
        .map(String::as_str)
        .collect();
    if pooled.is_empty() {
        "over seeds".to_string()
    } else {
        format!("pooled over seeds and {}", pooled.join(", "))
    }
}

/// A table per grouping of more than one axis (width × noise, width × learning rate, …): mean ±
/// standard deviation over seeds; empty when only width varies.
pub fn crossed_tables(report: &SweepReport) -> String {
    let mut text = String::new();
    for grouping in report
        .groups
        .iter()
        .filter(|grouping| grouping.axes.len() > 1)
    {
        text.push_str(&format!(
            "\nby {} (mean ± sd {})\n",
            grouping.axes.join(" × "),
            pooled_label(report, &grouping.axes)
        ));
        text.push_str(&crossed_table(grouping));
    }
    text
}
