//! The bound-versus-width report of a sweep: per-width aggregates, formatted as a terminal table,
//! CSV or JSON, and an SVG plot of bounds and gap against width.

pub mod analysis;
pub mod export;
mod export_parquet;
mod format;
mod format_groups;
pub mod groups;
pub mod parameters;
mod plot;
mod plot_survival;
pub mod statistics;
pub mod survival;

pub use format::{
    ReportFormat, TABLE_COLUMNS, analysis_table, confidence_interval, to_csv, to_markdown, to_table,
};
pub use format_groups::crossed_tables;
pub use plot::{bounds_plot_svg, stay_vs_noise_svg, write_bounds_plot};
pub use plot_survival::survival_svg;

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, SweepCounts, WidthSummary};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    pub sweep: String,
    /// Trials by state when the report was made; a report of a running sweep covers what is done.
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub diverged: u64,
    pub widths: Vec<WidthSummary>,
    /// Slopes in width and rank correlations with the gap, over the finished trials.
    #[serde(default)]
    pub analysis: Vec<analysis::MeasurementAnalysis>,
    /// Width alone and width × each other varied axis, over seeds.
    #[serde(default)]
    pub groups: Vec<groups::Grouping>,
    /// Kaplan–Meier survival in the first probe ball per width, pooled over seeds.
    #[serde(default)]
    pub survival: Vec<survival::WidthSurvival>,
}

impl SweepReport {
    pub async fn load(store: &dyn Store, sweep: &str) -> Result<Self, StoreError> {
        let counts = store.sweep_counts(Some(sweep)).await?;
        let SweepCounts {
            total,
            done,
            failed,
            diverged,
            ..
        } = counts.into_iter().next().unwrap_or_default();
        let widths = store.width_summaries(sweep).await?;
        let rows = store.trial_rows(sweep).await?;
        let analysis = analysis::analyse(&rows);
        let groups = groups::groupings(&rows);
        let survival = survival::survival_by_width(&rows);
        Ok(Self {
            sweep: sweep.to_string(),
            total,
            done,
            failed,
            diverged,
            widths,
            analysis,
            groups,
            survival,
        })
    }

    /// Writes `report.csv`, `report.json`, `bounds-vs-width.svg`, `survival.svg` when trials
    /// report exit steps and, when the sweep varies the probe noise, `stay-vs-noise.svg` into
    /// `directory`.
    pub fn write_files(
        &self,
        directory: &std::path::Path,
    ) -> anyhow::Result<Vec<std::path::PathBuf>> {
        use anyhow::Context;
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
        let csv_path = directory.join("report.csv");
        std::fs::write(&csv_path, to_csv(self))
            .with_context(|| format!("cannot write {}", csv_path.display()))?;
        let json_path = directory.join("report.json");
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(&json_path, json)
            .with_context(|| format!("cannot write {}", json_path.display()))?;
        let plot_path = directory.join("bounds-vs-width.svg");
        write_bounds_plot(self, &plot_path)
            .map_err(|error| anyhow::anyhow!("cannot draw {}: {error}", plot_path.display()))?;
        let mut written = vec![csv_path, json_path, plot_path];
        let figures = [
            ("survival.svg", survival_svg(self)),
            ("stay-vs-noise.svg", stay_vs_noise_svg(self)),
        ];
        for (name, svg) in figures {
            let Some(svg) = svg else {
                continue;
            };
            let path = directory.join(name);
            let svg =
                svg.map_err(|error| anyhow::anyhow!("cannot draw {}: {error}", path.display()))?;
            std::fs::write(&path, svg)
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}
