//! Text forms of a report: an aligned terminal table and CSV (JSON is the serde form).

use crate::store::{REPORTED_MEASUREMENTS, Summary};

use super::SweepReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
}

/// The table's columns: header and measurement; each cell is mean ± standard deviation over seeds.
const TABLE_COLUMNS: [(&str, &str); 10] = [
    ("params", "parameter_count"),
    ("train err", "train_error"),
    ("test err", "test_error"),
    ("err gap", "error_gap"),
    ("VC bound", "vc_gap_estimate"),
    ("spectral bound", "spectral_gap_estimate"),
    ("margin γ", "margin_gamma"),
    ("stay p(r₁)", "stay_probability"),
    ("λ_max", "hessian_lambda_max"),
    ("train s", "train_seconds"),
];

fn number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e5).contains(&magnitude) {
        format!("{value:.2e}")
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

fn cell(summary: Summary) -> String {
    match (summary.mean, summary.std_dev) {
        (None, _) => "–".to_string(),
        (Some(mean), None) => number(mean),
        (Some(mean), Some(std_dev)) => format!("{}±{}", number(mean), number(std_dev)),
    }
}

/// An aligned table, one row per width, with a header saying how much of the sweep is done.
pub fn to_table(report: &SweepReport) -> String {
    let mut header = vec![
        "width".to_string(),
        "done".to_string(),
        "failed".to_string(),
        "diverged".to_string(),
    ];
    header.extend(TABLE_COLUMNS.iter().map(|(title, _)| title.to_string()));
    let mut rows = vec![header];
    for width in &report.widths {
        let mut row = vec![
            width.width.to_string(),
            format!("{}/{}", width.done, width.trials),
            width.failed.to_string(),
            width.diverged.to_string(),
        ];
        row.extend(
            TABLE_COLUMNS
                .iter()
                .map(|(_, name)| cell(width.measurement(name))),
        );
        rows.push(row);
    }

    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = format!(
        "sweep {}: {} of {} trials done, {} failed, {} diverged\n",
        report.sweep, report.done, report.total, report.failed, report.diverged
    );
    for (index, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:>width$}", width = width))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
        if index == 0 {
            text.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (columns - 1)));
            text.push('\n');
        }
    }
    text.push_str(
        "bounds are generalization-gap estimates sqrt(C/m): VC = parameter count (Harvey et al.), \
         spectral = Bartlett–Foster–Telgarsky; err gap = test − train 0-1 error; stay p(r₁) = share of \
         probe replicates never leaving the first radius\n",
    );
    text
}

/// One row per width: counts, then mean, standard deviation and count of every measurement.
pub fn to_csv(report: &SweepReport) -> String {
    let mut text = String::from("sweep,width,trials,done,failed,diverged");
    for name in REPORTED_MEASUREMENTS {
        text.push_str(&format!(",{name}_mean,{name}_sd,{name}_n"));
    }
    text.push('\n');
    let optional = |value: Option<f64>| value.map(|value| value.to_string()).unwrap_or_default();
    for width in &report.widths {
        text.push_str(&format!(
            "{},{},{},{},{},{}",
            report.sweep, width.width, width.trials, width.done, width.failed, width.diverged
        ));
        for name in REPORTED_MEASUREMENTS {
            let summary = width.measurement(name);
            text.push_str(&format!(
                ",{},{},{}",
                optional(summary.mean),
                optional(summary.std_dev),
                summary.count
            ));
        }
        text.push('\n');
    }
    text
}
