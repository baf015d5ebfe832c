//! The bound-versus-width report of a sweep: per-width aggregates, formatted as a terminal table,
//! CSV or JSON, and figures as SVG and PNG.

pub mod aggregate;
pub mod analysis;
pub mod analysis_export;
pub mod bound_curves;
pub mod export;
mod export_parquet;
mod format;
mod format_groups;
pub mod groups;
pub mod msd;
pub mod parameters;
pub mod pgdl;
mod plot;
mod plot_landscape;
mod plot_msd;
mod plot_survival;
pub mod png;
pub mod robustness;
pub mod statistics;
pub mod survival;
pub mod width_slope;

pub use format::{
    ReportFormat, analysis_table, gap_interval, number, population_line, summary_cell,
    table_columns, to_csv, to_markdown, to_table,
};
pub use format_groups::crossed_tables;
pub use plot::{bounds_plot_svg, stay_vs_noise_svg};
pub use plot_landscape::landscape_svg;
pub use plot_msd::msd_svg;
pub use plot_survival::survival_svg;

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, StoredSlice, SweepCounts};
pub use aggregate::WidthSummary;
use vocabulary::catalog::Uses;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    pub sweep: String,
    /// Trials by state when the report was made; a report of a running sweep covers what is done.
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub diverged: u64,
    pub widths: Vec<WidthSummary>,
    /// Which trials the analysis reads, and how many it leaves out and why.
    #[serde(default)]
    pub population: analysis::Population,
    /// The axes the pooled slopes and figures pool over (the seed and every varied axis but
    /// width).
    #[serde(default)]
    pub pooled_over: Vec<String>,
    /// Slopes in width and rank statistics with the gap, over the population.
    #[serde(default)]
    pub analysis: Vec<analysis::MeasurementAnalysis>,
    /// Width alone and width × each other varied axis, over seeds.
    #[serde(default)]
    pub groups: Vec<groups::Grouping>,
    /// Kaplan–Meier survival in the first probe ball per width, pooled over seeds.
    #[serde(default)]
    pub survival: Vec<survival::WidthSurvival>,
    /// The probe's MSD curve per width, measured and predicted, averaged over seeds.
    #[serde(default)]
    pub msd: Vec<msd::WidthMsd>,
    /// The first stored loss-landscape slice of each width.
    #[serde(default)]
    pub landscapes: Vec<StoredSlice>,
    /// Every bound and the measured gaps per width, mean and sd over seeds: the headline figure.
    #[serde(default)]
    pub bound_curves: Vec<bound_curves::Curve>,
}

impl SweepReport {
    /// A report of nothing: no trials, no measurements.
    pub fn empty(sweep: &str) -> Self {
        Self {
            sweep: sweep.to_string(),
            total: 0,
            done: 0,
            failed: 0,
            diverged: 0,
            widths: Vec::new(),
            population: analysis::Population::default(),
            pooled_over: Vec::new(),
            analysis: Vec::new(),
            groups: Vec::new(),
            survival: Vec::new(),
            msd: Vec::new(),
            landscapes: Vec::new(),
            bound_curves: Vec::new(),
        }
    }

    /// Reads the sweep's stored results and computes the report from them; the computation
    /// (rank statistics, groupings, survival curves) runs off the async runtime, which serves
    /// workers meanwhile.
    /// Trials that ran out of steps before their target loss are analysed only with
    /// `include_unconverged`.
    pub async fn load(
        store: &dyn Store,
        sweep: &str,
        include_unconverged: bool,
    ) -> Result<Self, StoreError> {
        let counts = store.sweep_counts(Some(sweep)).await?;
        let counts = counts.into_iter().next().unwrap_or_default();
        let rows = store.trial_rows(sweep).await?;
        let landscapes = store.landscape_slices(sweep).await?;
        let sweep = sweep.to_string();
        let computed = tokio::task::spawn_blocking(move || {
            Self::compute(sweep, counts, rows, landscapes, include_unconverged)
        })
        .await;
        match computed {
            Ok(report) => Ok(report),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(StoreError::Stopped),
        }
    }

    /// The report of stored results.
    fn compute(
        sweep: String,
        counts: SweepCounts,
        rows: Vec<crate::store::TrialRow>,
        mut landscapes: Vec<crate::store::StoredSlice>,
        include_unconverged: bool,
    ) -> Self {
        let widths = aggregate::width_summaries(&rows, Uses::REPORTED);
        let analysis = analysis::analyse(&rows, include_unconverged);
        let groups = groups::groupings(&rows);
        let survival = survival::survival_by_width(&rows);
        let msd = msd::msd_by_width(&rows);
        let bound_curves = bound_curves::curves_by_width(&rows);
        let mut seen = std::collections::HashSet::new();
        landscapes.retain(|slice| seen.insert(slice.width));
        landscapes.sort_by_key(|slice| slice.width);
        Self {
            sweep,
            total: counts.total,
            done: counts.done,
            failed: counts.failed,
            diverged: counts.diverged,
            widths,
            population: analysis.population,
            pooled_over: analysis.pooled_over,
            analysis: analysis.measurements,
            groups,
            survival,
            msd,
            landscapes,
            bound_curves,
        }
    }

    /// Writes into `directory`: `report.csv` (per width), `report.json`, `analysis.csv` and
    /// `analysis.parquet` (one row per measurement), and each figure as SVG and as PNG
    /// (same stem, twice the size): `bounds-vs-width`; `survival` when trials report exit steps;
    /// `msd` when they stored MSD curves; `landscape-width-W` for each width with a stored slice;
    /// `stay-vs-noise` when the sweep varies the probe noise. On a system without fonts the PNGs
    /// are skipped with a warning, since their text could not be drawn; the SVGs need none.
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
        let analysis_csv_path = directory.join("analysis.csv");
        std::fs::write(&analysis_csv_path, analysis_export::analysis_csv(self))
            .with_context(|| format!("cannot write {}", analysis_csv_path.display()))?;
        let analysis_parquet_path = directory.join("analysis.parquet");
        let parquet = analysis_export::analysis_parquet(self)
            .with_context(|| format!("cannot encode {}", analysis_parquet_path.display()))?;
        std::fs::write(&analysis_parquet_path, parquet)
            .with_context(|| format!("cannot write {}", analysis_parquet_path.display()))?;
        let mut written = vec![
            csv_path,
            json_path,
            analysis_csv_path,
            analysis_parquet_path,
        ];
        let mut figures = vec![
            ("bounds-vs-width".to_string(), Some(bounds_plot_svg(self))),
            ("survival".to_string(), survival_svg(self)),
            ("msd".to_string(), msd_svg(self)),
            ("stay-vs-noise".to_string(), stay_vs_noise_svg(self)),
        ];
        for slice in &self.landscapes {
            figures.push((
                format!("landscape-width-{}", slice.width),
                Some(landscape_svg(&self.sweep, slice)),
            ));
        }
        let mut draw_pngs = true;
        for (stem, svg) in figures {
            let Some(svg) = svg else {
                continue;
            };
            let svg_path = directory.join(format!("{stem}.svg"));
            let svg = svg
                .map_err(|error| anyhow::anyhow!("cannot draw {}: {error}", svg_path.display()))?;
            std::fs::write(&svg_path, &svg)
                .with_context(|| format!("cannot write {}", svg_path.display()))?;
            written.push(svg_path);
            if !draw_pngs {
                continue;
            }
            let png_path = directory.join(format!("{stem}.png"));
            match png::svg_to_png(&svg) {
                Ok(png) => {
                    std::fs::write(&png_path, png)
                        .with_context(|| format!("cannot write {}", png_path.display()))?;
                    written.push(png_path);
                }
                Err(png::PngError::NoFonts) => {
                    tracing::warn!(
                        cause = %png::PngError::NoFonts,
                        "figures written as SVG only"
                    );
                    draw_pngs = false;
                }
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("cannot draw {}", png_path.display()));
                }
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn write_files_puts_a_png_next_to_each_svg() {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let report = super::png::tests::survival_report();
        let written = report.write_files(directory.path()).expect("written");
        let names: Vec<String> = written
            .iter()
            .filter_map(|path| path.file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "report.csv",
                "report.json",
                "analysis.csv",
                "analysis.parquet",
                "bounds-vs-width.svg",
                "bounds-vs-width.png",
                "survival.svg",
                "survival.png",
            ],
            "no stay-vs-noise: the sweep does not vary the probe noise"
        );
        for path in &written {
            let bytes = std::fs::read(path).expect("readable");
            if path.extension().is_some_and(|extension| extension == "png") {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
            }
        }
    }
}
