//! Text forms of a report: an aligned terminal table, CSV and Markdown (JSON is the serde form).

use super::aggregate::WidthSummary;
use super::statistics::{Interval, MeanInterval};
use vocabulary::catalog::{self, Uses};

use super::SweepReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
    Markdown,
}

/// The table's columns, (header, measurement): the catalog's [`Uses::TABLE`] columns; each cell
/// is mean ± standard deviation over seeds.
pub fn table_columns() -> Vec<(&'static str, &'static str)> {
    catalog::used_for(Uses::TABLE)
        .map(|entry| (entry.header, entry.column))
        .collect()
}

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

/// The measurements summarised per width in a report: the catalog's [`Uses::REPORTED`] columns.
pub fn reported_measurements() -> impl Iterator<Item = &'static str> {
    catalog::used_for(Uses::REPORTED).map(|entry| entry.column)
}

fn cell(summary: Option<MeanInterval>) -> String {
    match summary {
        None => "–".to_string(),
        Some(MeanInterval {
            mean,
            std_dev: None,
            ..
        }) => number(mean),
        Some(MeanInterval {
            mean,
            std_dev: Some(std_dev),
            ..
        }) => format!("{}±{}", number(mean), number(std_dev)),
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
    header.extend(table_columns().iter().map(|(title, _)| title.to_string()));
    let mut rows = vec![header];
    rows.extend(report.widths.iter().map(width_row));

    let mut text = format!(
        "sweep {}: {} of {} trials done, {} failed, {} diverged\n",
        report.sweep, report.done, report.total, report.failed, report.diverged
    );
    text.push_str(&aligned(&rows));
    text.push_str(
        "bounds are generalization-gap estimates sqrt(C/m): VC = parameter count (Harvey et al.), \
         spectral = Bartlett–Foster–Telgarsky; err gap = test − train 0-1 error; stay p(r₁) = share of \
         probe replicates never leaving the first radius\n",
    );
    text.push_str(&super::crossed_tables(report));
    if !report.analysis.is_empty() {
        text.push('\n');
        text.push_str(&analysis_table(report));
    }
    text
}

/// The headline comparison: each measurement's exponent in width and its rank correlation with
/// the gap, overall and per varied axis.
pub fn analysis_table(report: &SweepReport) -> String {
    let axes: Vec<String> = report
        .analysis
        .first()
        .map(|analysis| {
            analysis
                .granulated_tau
                .iter()
                .map(|(axis, _)| axis.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut header = vec![
        "measurement".to_string(),
        "slope vs width [95% CI]".to_string(),
        format!("τ with {}", super::analysis::GAP),
    ];
    header.extend(axes.iter().map(|axis| format!("τ over {axis}")));
    let mut rows = vec![header];
    let tau = |value: Option<f64>| {
        value
            .map(|value| format!("{value:.3}"))
            .unwrap_or("–".into())
    };
    for analysis in &report.analysis {
        let slope = match analysis.width_slope {
            None => "–".to_string(),
            Some(fit) => match (fit.low, fit.high) {
                (Some(low), Some(high)) => format!("{:.3} [{low:.3}, {high:.3}]", fit.slope),
                _ => format!("{:.3}", fit.slope),
            },
        };
        let name = if analysis.heuristic {
            format!("{} (heuristic)", analysis.measurement)
        } else {
            analysis.measurement.clone()
        };
        let mut row = vec![name, slope, tau(analysis.kendall_tau)];
        row.extend(analysis.granulated_tau.iter().map(|(_, value)| tau(*value)));
        rows.push(row);
    }
    let mut text = String::from(
        "scaling with width (log-log least squares over trials) and Kendall τ with the gap \
         (over all finished trials, and granulated: within groups where only that axis varies)\n",
    );
    text.push_str(&aligned(&rows));
    text
}

/// Right-aligned columns under a ruled header row.
pub(super) fn aligned(rows: &[Vec<String>]) -> String {
    let mut text = String::new();
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let names_first = rows
        .get(1)
        .and_then(|row| row.first())
        .is_some_and(|cell| cell.parse::<f64>().is_err());
    for (index, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                // Names read from the left, numbers from the right.
                if column == 0 && names_first {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
        if index == 0 {
            text.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (columns - 1)));
            text.push('\n');
        }
    }
    text
}

/// One row per width: counts, then mean, standard deviation and count of every measurement.
pub fn to_csv(report: &SweepReport) -> String {
    let mut text = String::from("sweep,width,trials,done,failed,diverged");
    for name in reported_measurements() {
        text.push_str(&format!(
            ",{name}_mean,{name}_sd,{name}_n,{name}_ci95_low,{name}_ci95_high"
        ));
    }
    text.push('\n');
    let optional = |value: Option<f64>| value.map(|value| value.to_string()).unwrap_or_default();
    for width in &report.widths {
        text.push_str(&format!(
            "{},{},{},{},{},{}",
            report.sweep,
            width.width,
            width.summary.trials,
            width.summary.done,
            width.summary.failed,
            width.summary.diverged
        ));
        for name in reported_measurements() {
            let summary = width.summary.measurement(name);
            let interval = summary.and_then(|summary| summary.interval);
            text.push_str(&format!(
                ",{},{},{},{},{}",
                optional(summary.map(|summary| summary.mean)),
                optional(summary.and_then(|summary| summary.std_dev)),
                summary.map_or(0, |summary| summary.count),
                optional(interval.map(|interval| interval.low)),
                optional(interval.map(|interval| interval.high)),
            ));
        }
        text.push('\n');
    }
    text
}

/// A width's 95% Student-t interval of the mean gap over seeds, when it has one.
pub fn gap_interval(width: &WidthSummary) -> Option<Interval> {
    width.summary.measurement("error_gap")?.interval
}

/// The per-width table (mean ± standard deviation, with the 95% interval of the gap) and the
/// analysis, as Markdown tables for a lab notebook or a pull request.
pub fn to_markdown(report: &SweepReport) -> String {
    let mut text = format!(
        "## Sweep `{}`\n\n{} of {} trials done, {} failed, {} diverged.\n\n",
        report.sweep, report.done, report.total, report.failed, report.diverged
    );
    let mut header = vec!["width", "done", "failed", "diverged"];
    header.extend(table_columns().iter().map(|(title, _)| *title));
    header.push("err gap 95% CI");
    text.push_str(&format!("| {} |\n", header.join(" | ")));
    text.push_str(&format!("|{}\n", "---:|".repeat(header.len())));
    for width in &report.widths {
        let mut row = width_row(width);
        row.push(match gap_interval(width) {
            Some(Interval { low, high }) => format!("[{}, {}]", number(low), number(high)),
            None => "–".to_string(),
        });
        text.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    let crossed = super::crossed_tables(report);
    if !crossed.is_empty() {
        text.push_str(&format!("\n```{crossed}```\n"));
    }
    if !report.analysis.is_empty() {
        text.push_str("\n```\n");
        text.push_str(&analysis_table(report));
        text.push_str("```\n");
    }
    text
}

/// A width's counts and table columns, as the table and the Markdown both print them.
fn width_row(width: &WidthSummary) -> Vec<String> {
    let mut row = vec![
        width.width.to_string(),
        format!("{}/{}", width.summary.done, width.summary.trials),
        width.summary.failed.to_string(),
        width.summary.diverged.to_string(),
    ];
    row.extend(
        table_columns()
            .iter()
            .map(|(_, name)| cell(width.summary.measurement(name))),
    );
    row
}
