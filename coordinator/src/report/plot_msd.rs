//! The MSD figure: the probe's mean-squared displacement from Θ̂ against the probe step, one colour
//! per width, measured (solid) beside the linearised prediction (dashed), log-log: slope 1 is
//! free diffusion, a flat curve a confined cloud.

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::SweepReport;
use super::plot::{WIDTH_COLORS, drawn_svg, finish_with_legend};

/// None when no trial stored an MSD curve.
pub fn msd_svg(report: &SweepReport) -> Option<Result<String, String>> {
    if report.msd.is_empty() {
        return None;
    }
    Some(drawn_svg((960, 620), |root| draw_msd(report, root)))
}

/// The (step, value) points a log-log axis can show.
fn positive_points(steps: &[u64], values: impl Iterator<Item = Option<f64>>) -> Vec<(f64, f64)> {
    steps
        .iter()
        .zip(values)
        .filter_map(|(&step, value)| {
            let value = value?;
            (step > 0 && value > 0.0 && value.is_finite()).then_some((step as f64, value))
        })
        .collect()
}

fn draw_msd<Backend: DrawingBackend>(
    report: &SweepReport,
    root: DrawingArea<Backend, plotters::coord::Shift>,
) -> Result<(), String> {
    let measured: Vec<Vec<(f64, f64)>> = report
        .msd
        .iter()
        .map(|width| positive_points(&width.steps, width.msd.iter().copied().map(Some)))
        .collect();
    let predicted: Vec<Vec<(f64, f64)>> = report
        .msd
        .iter()
        .map(|width| positive_points(&width.steps, width.predicted_msd.iter().copied()))
        .collect();
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, 1.0f64, f64::MAX, f64::MIN);
    for &(x, y) in measured.iter().chain(&predicted).flatten() {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if y_min > y_max {
        (y_min, y_max) = (1e-6, 1.0);
    }
    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: mean-squared displacement in the probe", report.sweep),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (x_min.min(x_max) / 1.2..x_max * 1.2).log_scale(),
            (y_min / 2.0..y_max * 2.0).log_scale(),
        )
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("probe step t")
        .y_desc("MSD(t) = mean ||Θ_t − Θ̂||² (squared parameter distance)")
        .x_label_formatter(&|value| super::plot::power_of_ten_label(*value))
        .y_label_formatter(&|value| super::plot::power_of_ten_label(*value))
        .draw()
        .map_err(|error| error.to_string())?;
    for (index, width) in report.msd.iter().enumerate() {
        let color = WIDTH_COLORS[index % WIDTH_COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                measured[index].clone(),
                color.stroke_width(2),
            ))
            .map_err(|error| error.to_string())?
            .label(format!("width {} ({} trials)", width.width, width.trials))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        if predicted[index].len() >= 2 {
            chart
                .draw_series(DashedLineSeries::new(
                    predicted[index].clone(),
                    6,
                    4,
                    color.stroke_width(1),
                ))
                .map_err(|error| error.to_string())?;
        }
    }
    if predicted.iter().any(|points| points.len() >= 2) {
        // One legend entry explains every dashed line.
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())
            .map_err(|error| error.to_string())?
            .label("dashed: linearised prediction Σ v_i(t) (§3.8)")
            .legend(|(x, y)| {
                DashedPathElement::new(vec![(x, y), (x + 20, y)], 4, 3, BLACK.stroke_width(1))
            });
    }
    finish_with_legend(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::msd::WidthMsd;
    use crate::report::plot::polyline_lengths;

    #[test]
    fn a_curve_per_width_with_its_prediction_dashed() {
        let report = SweepReport {
            msd: vec![
                WidthMsd {
                    width: 16,
                    trials: 3,
                    steps: vec![10, 20, 30],
                    msd: vec![0.1, 0.2, 0.3],
                    predicted_msd: vec![Some(0.05), Some(0.1), Some(0.15)],
                },
                WidthMsd {
                    width: 256,
                    trials: 3,
                    steps: vec![10, 20, 30],
                    msd: vec![0.5, 1.0, 1.5],
                    predicted_msd: vec![None, None, None],
                },
            ],
            ..SweepReport::empty("msd-test")
        };
        let svg = msd_svg(&report).expect("curves stored").expect("drawn");
        for expected in [
            "msd-test: mean-squared displacement in the probe",
            "probe step t",
            "width 16 (3 trials)",
            "width 256 (3 trials)",
            "dashed: linearised prediction",
        ] {
            assert!(svg.contains(expected), "{expected} in {svg}");
        }
        // Two solid curves of three points each.
        let solid = polyline_lengths(&svg, true)
            .into_iter()
            .filter(|&points| points == 3)
            .count();
        assert_eq!(solid, 2, "{svg}");
        assert!(msd_svg(&SweepReport::empty("none")).is_none());
    }
}
