//! Text forms of a report: an aligned terminal table, CSV and Markdown (JSON is the serde form).

use super::aggregate::WidthSummary;
use super::analysis::{SlopeFit, WidthSlope};
use super::statistics::{Interval, MeanInterval};
use vocabulary::catalog::{self, Uses};

use super::SweepReport;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Table,
    /// The per-width table.
    Csv,
    /// The analysis, one row per measurement.
    AnalysisCsv,
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

/// Three significant digits: plain notation from 10⁻³ to 10⁵ (an integer part of four or five
/// digits kept whole), scientific outside it; a whole number (a count) below 10¹² in full.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        "0".to_string()
    } else if !value.is_finite() {
        if value > 0.0 { "∞" } else { "−∞" }.to_string()
    } else if value.fract() == 0.0 && magnitude < 1e12 {
        format!("{value:.0}")
    } else if !(1e-3..1e5).contains(&magnitude) {
        format!("{value:.2e}")
    } else {
        let decimals = (2 - magnitude.log10().floor() as i32).max(0) as usize;
        format!("{value:.decimals$}")
    }
}

/// The measurements summarised per width in a report: the catalog's [`Uses::REPORTED`] columns.
pub fn reported_measurements() -> impl Iterator<Item = &'static str> {
    catalog::used_for(Uses::REPORTED).map(|entry| entry.column)
}

/// A summary as a table shows it: mean ± sd, three significant digits.
pub fn summary_cell(summary: Option<MeanInterval>) -> String {
    match summary {
        None => "–".to_string(),
        Some(MeanInterval {
            mean,
            std_dev: None,
            ..
        }) => number(mean),
        // Equal values (a parameter count, a configuration value) read as the value alone.
        Some(MeanInterval {
            mean,
            std_dev: Some(0.0),
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
    text.push_str(&format!(
        "each cell: mean ± sd {} of the finished, non-diverged trials\n",
        super::format_groups::pooled_label(report, &[super::parameters::WIDTH.to_string()])
    ));
    text.push_str(&super::crossed_tables(report));
    if !report.analysis.is_empty() {
        text.push('\n');
        text.push_str(&analysis_table(report));
    }
    text
}

/// Who the analysis counts, in a sentence.
pub fn population_line(report: &SweepReport) -> String {
    let population = &report.population;
    let mut text = format!(
        "analysed: {} trials {}",
        population.analysed,
        if population.include_unconverged {
            "finished without diverging (--include-unconverged)"
        } else {
            "trained to their target loss"
        }
    );
    let left_out = [
        (
            population.left_out_budget_exhausted,
            "ran out of steps before the target",
        ),
        (population.left_out_diverged, "diverged"),
        (population.left_out_unfinished, "unfinished or failed"),
    ];
    let reasons: Vec<String> = left_out
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, reason)| format!("{count} {reason}"))
        .collect();
    if !reasons.is_empty() {
        text.push_str(&format!("; left out: {}", reasons.join(", ")));
    }
    if !report.pooled_over.is_empty() {
        text.push_str(&format!(
            "; slopes and τ pooled over {}",
            report.pooled_over.join(", ")
        ));
    }
    text.push('\n');
    text
}

/// A value in three significant digits, or a dash where there is none.
fn number_or_dash(value: Option<f64>) -> String {
    value.map(number).unwrap_or("–".into())
}

fn slope_text(slope: Option<WidthSlope>) -> String {
    match slope {
        None => "–".to_string(),
        Some(fit) => {
            let mut text = number(fit.slope);
            if let (Some(low), Some(high)) = (fit.low, fit.high) {
                text.push_str(&format!(" [{}, {}]", number(low), number(high)));
            }
            if fit.fit != SlopeFit::LogLogTrials {
                text.push_str(&format!(" ({})", fit.fit.label()));
            }
            text
        }
    }
}

/// The headline comparison: each measurement's slope in width and its rank statistics with the
/// gap (science.md §5), then the slopes within each cell of the other axes when they vary.
pub fn analysis_table(report: &SweepReport) -> String {
    let axes: Vec<(String, usize)> = report
        .analysis
        .first()
        .map(|analysis| {
            analysis
                .granulated_tau
                .iter()
                .map(|axis| (axis.axis.clone(), axis.groups))
                .collect()
        })
        .unwrap_or_default();
    let pooled = if report.pooled_over.is_empty() {
        String::new()
    } else {
        " (pooled)".to_string()
    };
    let mut header = vec![
        "measurement".to_string(),
        format!("slope vs width [95% CI]{pooled}"),
        "vacuous".to_string(),
        "τ-a".to_string(),
        "τ-b".to_string(),
    ];
    header.extend(
        axes.iter()
            .map(|(axis, groups)| format!("ψ {axis} ({groups} groups)")),
    );
    header.extend(
        ["Ψ", "sign-err mean", "sign-err worst", "PGDL CMI"]
            .iter()
            .map(|title| title.to_string()),
    );
    let mut rows = vec![header];
    for analysis in &report.analysis {
        let name = if analysis.heuristic {
            format!("{} (heuristic)", analysis.measurement)
        } else {
            analysis.measurement.clone()
        };
        let mut row = vec![
            name,
            slope_text(analysis.width_slope),
            analysis.vacuous.to_string(),
            number_or_dash(analysis.kendall_tau_a),
            number_or_dash(analysis.kendall_tau_b),
        ];
        row.extend(
            analysis
                .granulated_tau
                .iter()
                .map(|axis| number_or_dash(axis.psi)),
        );
        row.push(number_or_dash(analysis.psi));
        let robust = analysis.robust_sign_error;
        row.push(number_or_dash(robust.map(|robust| robust.mean)));
        row.push(number_or_dash(robust.map(|robust| robust.worst)));
        row.push(number_or_dash(analysis.pgdl_cmi));
        rows.push(row);
    }
    let mut text = population_line(report);
    text.push_str(
        "slope: log-log least squares over trials unless marked; τ-a, τ-b: Kendall with the gap \
         over all analysed trials; ψ: mean τ-a within groups where only that axis varies, Ψ their \
         mean (Jiang et al. 2020); sign-err: Dziugaite et al. 2020 over environments; PGDL CMI: \
         ×100, min over pairs of axes\n",
    );
    text.push_str(&aligned(&rows));
    text.push_str(&cell_slopes_table(report));
    text
}

/// The slope in width of each measurement within each cell of the other varied axes.
fn cell_slopes_table(report: &SweepReport) -> String {
    let Some(cells) = report
        .analysis
        .first()
        .map(|analysis| &analysis.cell_slopes)
        .filter(|cells| !cells.is_empty())
    else {
        return String::new();
    };
    let mut header = vec!["measurement".to_string()];
    header.extend(cells.iter().map(|cell| {
        cell.cell
            .iter()
            .map(|(axis, value)| format!("{axis}={value}"))
            .collect::<Vec<_>>()
            .join(" ")
    }));
    let mut rows = vec![header];
    for analysis in &report.analysis {
        let mut row = vec![analysis.measurement.clone()];
        row.extend(
            analysis
                .cell_slopes
                .iter()
                .map(|cell| slope_text(cell.slope)),
        );
        rows.push(row);
    }
    format!(
        "\nslope vs width within each cell of the other axes (pooled over seeds only)\n{}",
        aligned(&rows)
    )
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
            ",{name}_mean,{name}_sd,{name}_n,{name}_ci95_low,{name}_ci95_high,{name}_vacuous"
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
                ",{},{},{},{},{},{}",
                optional(summary.map(|summary| summary.mean)),
                optional(summary.and_then(|summary| summary.std_dev)),
                summary.map_or(0, |summary| summary.count),
                optional(interval.map(|interval| interval.low)),
                optional(interval.map(|interval| interval.high)),
                width.summary.vacuous(name),
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
    row.extend(table_columns().iter().map(|(_, name)| {
        let cell = summary_cell(width.summary.measurement(name));
        match width.summary.vacuous(name) {
            0 => cell,
            vacuous => format!("{cell} ({vacuous} vacuous)"),
        }
    }));
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_in_three_significant_digits_and_counts_whole() {
        assert_eq!(number(0.012345), "0.0123");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(404.0), "404");
        assert_eq!(number(153_610.0), "153610");
        assert_eq!(number(153_610.5), "1.54e5");
        assert_eq!(number(-8.9e-6), "-8.90e-6");
        assert_eq!(number(f64::INFINITY), "∞");
        // A parameter count over seeds: the same value every time, so no ±0.
        let count = super::super::statistics::mean_interval(&[404.0, 404.0]);
        assert_eq!(summary_cell(count), "404");
        let spread = super::super::statistics::mean_interval(&[0.1, 0.3]);
        assert_eq!(summary_cell(spread), "0.200±0.141");
    }
}
