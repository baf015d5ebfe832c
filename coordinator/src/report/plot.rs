//! The headline figure: generalization-gap estimates of the bounds and the measured gap against
//! width, on log-log axes.

use std::path::Path;

use plotters::prelude::*;

use super::SweepReport;

/// Series drawn: measurement, legend label, colour.
const SERIES: [(&str, &str, RGBColor); 4] = [
    (
        "vc_gap_estimate",
        "parameter-count (VC) bound",
        RGBColor(200, 40, 40),
    ),
    (
        "spectral_gap_estimate",
        "spectral (BFT) bound",
        RGBColor(40, 90, 200),
    ),
    (
        "error_gap",
        "measured gap, 0-1 error (test − train)",
        RGBColor(20, 140, 60),
    ),
    (
        "loss_gap",
        "measured gap, cross-entropy (test − train)",
        RGBColor(230, 150, 20),
    ),
];

/// A legend label, its colour, and its (width, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// Writes the plot as an SVG file.
pub fn write_bounds_plot(report: &SweepReport, path: &Path) -> Result<(), String> {
    let svg = bounds_plot_svg(report)?;
    std::fs::write(path, svg).map_err(|error| error.to_string())
}

/// The plot as SVG text; points that cannot go on a log axis (≤ 0 or missing) are left out.
pub fn bounds_plot_svg(report: &SweepReport) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 620)).into_drawing_area();
        draw_bounds_plot(report, root)?;
    }
    Ok(svg)
}

fn draw_bounds_plot<Backend: DrawingBackend>(
    report: &SweepReport,
    root: DrawingArea<Backend, plotters::coord::Shift>,
) -> Result<(), String> {
    let mut series: Vec<Series> = Vec::new();
    for (name, label, color) in SERIES {
        let points: Vec<(f64, f64)> = report
            .widths
            .iter()
            .filter_map(|width| {
                let mean = width.measurement(name).mean?;
                (mean > 0.0 && mean.is_finite()).then_some((width.width as f64, mean))
            })
            .collect();
        series.push((label, color, points));
    }
    let all_points = series.iter().flat_map(|(_, _, points)| points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in all_points {
        x_min = x_min.min(*x);
        x_max = x_max.max(*x);
        y_min = y_min.min(*y);
        y_max = y_max.max(*y);
    }
    if x_min > x_max {
        // Nothing finished yet: an empty chart over a nominal range still shows the axes.
        (x_min, x_max, y_min, y_max) = (1.0, 10.0, 0.01, 1.0);
    }
    let x_range = (x_min / 1.5)..(x_max * 1.5);
    let y_range = (y_min / 3.0)..(y_max * 3.0);

    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: bounds and generalization gap vs width", report.sweep),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("hidden width (units per layer)")
        .y_desc("generalization gap / bound estimate sqrt(C/m)")
        .draw()
        .map_err(|error| error.to_string())?;
    for (label, color, points) in series {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|error| error.to_string())?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|point| Circle::new(point, 4, color.filled())),
            )
            .map_err(|error| error.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|error| error.to_string())?;
    root.present().map_err(|error| error.to_string())?;
    Ok(())
}
