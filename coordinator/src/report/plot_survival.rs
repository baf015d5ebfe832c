//! The survival figure: Kaplan–Meier curves of staying in the first probe ball against the probe
//! step, one step curve per width, pooled over seeds.

use plotters::prelude::*;

use super::SweepReport;
use super::plot::{WIDTH_COLORS, drawn_svg, finish_with_legend};

/// None when no trial reported per-replicate exit steps.
pub fn survival_svg(report: &SweepReport) -> Option<Result<String, String>> {
    if report.survival.is_empty() {
        return None;
    }
    Some(drawn_svg((960, 620), |root| draw_survival(report, root)))
}

fn draw_survival<Backend: DrawingBackend>(
    report: &SweepReport,
    root: DrawingArea<Backend, plotters::coord::Shift>,
) -> Result<(), String> {
    let longest = report
        .survival
        .iter()
        .map(|width| width.probe_steps)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: survival in the first probe ball", report.sweep),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..longest, -0.02f64..1.05f64)
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("probe step t")
        .x_label_formatter(&|step| format!("{step:.0}"))
        .y_desc("Kaplan–Meier Ŝ(t): share of replicates still inside")
        .draw()
        .map_err(|error| error.to_string())?;
    for (index, width) in report.survival.iter().enumerate() {
        let color = WIDTH_COLORS[index % WIDTH_COLORS.len()];
        // A step function: flat until each exit, then down to the new estimate.
        let mut points = vec![(0.0, 1.0)];
        let mut level = 1.0;
        for &(step, survival) in &width.curve {
            points.push((step, level));
            points.push((step, survival));
            level = survival;
        }
        points.push((width.probe_steps as f64, level));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|error| error.to_string())?
            .label(format!(
                "width {} ({} replicates, {} trials)",
                width.width, width.replicates, width.trials
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    finish_with_legend(&mut chart, &root, SeriesLabelPosition::LowerLeft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::polyline_lengths;

    #[test]
    fn a_step_curve_per_width_with_its_legend_and_axes() {
        let report = crate::report::png::tests::survival_report();
        let svg = survival_svg(&report)
            .expect("trials report exit steps")
            .expect("drawn");
        for expected in [
            "survival-test: survival in the first probe ball",
            "probe step t",
            "width 16 (8 replicates, 2 trials)",
            "width 512 (8 replicates, 2 trials)",
        ] {
            assert!(svg.contains(expected), "{expected} in {svg}");
        }
        // Width 16: (0,1) (10,1) (10,.75) (40,.75) (40,.5) (100,.5); width 512: four points.
        let lengths: Vec<usize> = polyline_lengths(&svg, true)
            .into_iter()
            .filter(|&count| count > 2)
            .collect();
        assert_eq!(lengths, [6, 4], "{svg}");
        let none = SweepReport {
            survival: Vec::new(),
            ..report
        };
        assert!(survival_svg(&none).is_none());
    }
}
