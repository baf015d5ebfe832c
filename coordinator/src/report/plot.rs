//! The headline figure: every bound's generalization-gap estimate and the measured gaps against
//! width, on log-log axes, each a line through the means over seeds with ±1 sd error bars.

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use super::SweepReport;
use super::bound_curves::Curve;

/// Colours of the series in [`super::bound_curves::series`] order: the measured gaps (last two)
/// in black and dark grey, so they stand out from the bounds.
const CURVE_COLORS: [RGBColor; 13] = [
    RGBColor(200, 40, 40),
    RGBColor(40, 90, 200),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
    RGBColor(230, 171, 2),
    RGBColor(0, 0, 0),
    RGBColor(90, 90, 90),
];

/// The color of a series by its measurement name.
fn curve_color(measurement: &str) -> RGBColor {
    super::bound_curves::series()
        .iter()
        .position(|(name, _)| *name == measurement)
        .map_or(BLACK, |index| CURVE_COLORS[index % CURVE_COLORS.len()])
}

/// A log axis's tick: a power of ten as 10ⁿ, anything else in three significant digits.
pub(super) fn power_of_ten_label(value: f64) -> String {
    const SUPERSCRIPTS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let exponent = value.log10().round();
    if value > 0.0 && (value / 10f64.powf(exponent) - 1.0).abs() < 1e-9 {
        let digits: String = (exponent.abs() as u64)
            .to_string()
            .chars()
            .filter_map(|digit| digit.to_digit(10))
            .map(|digit| SUPERSCRIPTS[digit as usize])
            .collect();
        let sign = if exponent < 0.0 { "⁻" } else { "" };
        format!("10{sign}{digits}")
    } else {
        super::format::number(value)
    }
}

/// The plot as SVG text; points that cannot go on a log axis (≤ 0 or missing) are left out, and
/// an error bar's lower end that would reach 0 stops at the bottom of the chart.
pub fn bounds_plot_svg(report: &SweepReport) -> Result<String, String> {
    drawn_svg((1280, 700), |root| draw_bounds_plot(report, root))
}

/// A figure of `size` pixels drawn by `draw`, as SVG text.
pub fn drawn_svg(
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, size).into_drawing_area())?;
    Ok(svg)
}

/// The number of points of each `<polyline>` of a figure, in order; only the 2-pixel data lines
/// (not the 1-pixel axes, grid and legend swatches) when `thick_only`.
#[cfg(test)]
pub fn polyline_lengths(svg: &str, thick_only: bool) -> Vec<usize> {
    svg.lines()
        .filter(|line| line.starts_with("<polyline"))
        .filter(|line| !thick_only || line.contains("stroke-width=\"2\""))
        .filter_map(|line| line.split("points=\"").nth(1))
        .map(|points| {
            points
                .split('"')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .count()
        })
        .collect()
}

/// (width, mean, mean − sd, mean + sd): one point of a series with its error bar.
type BarPoint = (f64, f64, f64, f64);

/// The points a log axis can show.
fn drawable(curve: &Curve) -> Vec<BarPoint> {
    curve
        .points
        .iter()
        .filter(|point| point.summary.mean > 0.0 && point.summary.mean.is_finite())
        .map(|point| {
            let (mean, sd) = (point.summary.mean, point.summary.std_dev.unwrap_or(0.0));
            (point.width as f64, mean, mean - sd, mean + sd)
        })
        .collect()
}

fn draw_bounds_plot<Backend: DrawingBackend>(
    report: &SweepReport,
    root: DrawingArea<Backend, plotters::coord::Shift>,
) -> Result<(), String> {
    let series: Vec<(&Curve, Vec<BarPoint>)> = report
        .bound_curves
        .iter()
        .map(|curve| (curve, drawable(curve)))
        .filter(|(_, points)| !points.is_empty())
        .collect();
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y, _, high) in series.iter().flat_map(|(_, points)| points) {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(high.max(y));
    }
    if x_min > x_max {
        // Nothing finished yet: an empty chart over a nominal range still shows the axes.
        (x_min, x_max, y_min, y_max) = (1.0, 10.0, 0.01, 1.0);
    }
    let floor = y_min / 3.0;
    let x_range = (x_min / 1.5)..(x_max * 1.5);
    let y_range = floor..(y_max * 3.0);

    root.fill(&WHITE).map_err(|error| error.to_string())?;
    // Thirteen series: the legend gets a panel of its own instead of covering the lines.
    let (plot_area, legend_area) = root.split_horizontally(940);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(
            format!("{}: bounds and generalization gap vs width", report.sweep),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range.log_scale(), y_range.log_scale())
        .map_err(|error| error.to_string())?;
    let pooled = super::format_groups::pooled_label(report, &[super::parameters::WIDTH.into()]);
    chart
        .configure_mesh()
        .x_desc("hidden width (units per layer)")
        .y_desc(format!(
            "generalization gap / bound estimate sqrt(C/m), mean ± sd {pooled}"
        ))
        .x_label_formatter(&|value| power_of_ten_label(*value))
        .y_label_formatter(&|value| power_of_ten_label(*value))
        .draw()
        .map_err(|error| error.to_string())?;
    // A vacuous bound has no point: a triangle at the top edge marks each width that has one.
    let top = y_max * 2.2;
    for (index, (curve, points)) in series.iter().enumerate() {
        let color = curve_color(&curve.measurement);
        let measured =
            curve.measurement.ends_with("_gap") && !curve.measurement.contains("estimate");
        let stroke = if measured { 3 } else { 2 };
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|&(x, y, _, _)| (x, y)),
                color.stroke_width(stroke),
            ))
            .map_err(|error| error.to_string())?;
        // A bar of no length (every seed agrees) is left out: there is nothing to stroke.
        chart
            .draw_series(points.iter().filter(|&&(_, _, low, high)| high > low).map(
                |&(x, y, low, high)| {
                    ErrorBar::new_vertical(x, low.max(floor), y, high, color.stroke_width(1), 6)
                },
            ))
            .map_err(|error| error.to_string())?;
        chart
            .draw_series(
                curve
                    .vacuous
                    .iter()
                    .map(|&(width, _)| TriangleMarker::new((width as f64, top), 6, color.filled())),
            )
            .map_err(|error| error.to_string())?;
        let y = 60 + 26 * index as i32;
        legend_area
            .draw(&PathElement::new(
                vec![(10, y), (40, y)],
                color.stroke_width(stroke),
            ))
            .map_err(|error| error.to_string())?;
        let vacuous: u64 = curve.vacuous.iter().map(|(_, count)| count).sum();
        let label = if vacuous > 0 {
            format!("{} (▲ {vacuous} vacuous)", curve.label)
        } else {
            curve.label.clone()
        };
        legend_area
            .draw(&Text::new(
                label,
                (48, y - 7),
                ("sans-serif", 14).into_font(),
            ))
            .map_err(|error| error.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y, _, _)| Circle::new((x, y), 3, color.filled())),
            )
            .map_err(|error| error.to_string())?;
    }
    root.present().map_err(|error| error.to_string())?;
    Ok(())
}

pub(super) const WIDTH_COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Stay probability in the first probe ball against the probe noise σ, one line per width, with
/// ±1 sd over seeds as error bars; None unless the sweep varies `probe.noise_sigma`.
pub fn stay_vs_noise_svg(report: &SweepReport) -> Option<Result<String, String>> {
    let grouping = report.groups.iter().find(|grouping| {
        grouping.axes.len() == 2
            && grouping.axes[0] == "model.width"
            && grouping.axes[1] == "probe.noise_sigma"
    })?;
    // width → (σ, mean, sd) points
    let mut lines: std::collections::BTreeMap<u64, Vec<(f64, f64, f64)>> = Default::default();
    for cell in &grouping.cells {
        let (Some(width), Some(sigma)) = (
            cell.axes[0].1.parse::<f64>().ok(),
            cell.axes[1].1.parse::<f64>().ok(),
        ) else {
            continue;
        };
        if let Some(summary) = cell.summary.measurement("stay_probability_1")
            && sigma > 0.0
        {
            lines.entry(width as u64).or_default().push((
                sigma,
                summary.mean,
                summary.std_dev.unwrap_or(0.0),
            ));
        }
    }
    Some(drawn_svg((960, 620), |root| {
        draw_stay_vs_noise(report, &lines, root)
    }))
}

fn draw_stay_vs_noise<Backend: DrawingBackend>(
    report: &SweepReport,
    lines: &std::collections::BTreeMap<u64, Vec<(f64, f64, f64)>>,
    root: DrawingArea<Backend, plotters::coord::Shift>,
) -> Result<(), String> {
    let sigmas = lines.values().flatten().map(|(sigma, _, _)| *sigma);
    let (low, high) = sigmas.fold((f64::MAX, f64::MIN), |(low, high), sigma| {
        (low.min(sigma), high.max(sigma))
    });
    let (low, high) = if low > high {
        (0.001, 1.0)
    } else {
        (low, high)
    };
    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: stay probability vs probe noise", report.sweep),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(((low / 1.5)..(high * 1.5)).log_scale(), -0.05f64..1.05f64)
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("probe gradient-noise σ")
        .y_desc("stay probability in the first probe ball")
        .x_label_formatter(&|value| power_of_ten_label(*value))
        .draw()
        .map_err(|error| error.to_string())?;
    for (index, (width, points)) in lines.iter().enumerate() {
        // Distinct hues (the Tableau 10 palette), repeating past ten widths.
        let color = WIDTH_COLORS[index % WIDTH_COLORS.len()];
        let mut points = points.clone();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(sigma, mean, _)| (*sigma, *mean)),
                color.stroke_width(2),
            ))
            .map_err(|error| error.to_string())?
            .label(format!("width {width}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|(sigma, mean, sd)| {
                ErrorBar::new_vertical(*sigma, mean - sd, *mean, mean + sd, color.filled(), 8)
            }))
            .map_err(|error| error.to_string())?;
    }
    finish_with_legend(&mut chart, &root, SeriesLabelPosition::UpperRight)
}

/// Draws the chart's legend at `position` on a translucent white box, then finishes the figure.
pub(super) fn finish_with_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    root: &DrawingArea<DB, Shift>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|error| error.to_string())?;
    root.present().map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn log_ticks_read_as_powers_of_ten() {
        assert_eq!(power_of_ten_label(1e7), "10⁷");
        assert_eq!(power_of_ten_label(1.0), "10⁰");
        assert_eq!(power_of_ten_label(0.001), "10⁻³");
        assert_eq!(power_of_ten_label(20.0), "20");
        assert_eq!(power_of_ten_label(0.02), "0.0200");
        assert_eq!(power_of_ten_label(5000.0), "5000");
    }

    use super::*;
    use crate::store::TrialRow;

    fn trial(width: u64, sigma: f64, seed: u64, stay: f64) -> TrialRow {
        TrialRow::converged(
            format!("{width}-{sigma}-{seed}"),
            format!(
                r#"{{"seed":{seed},"model":{{"width":{width}}},"probe":{{"noise_sigma":{sigma}}}}}"#
            ),
            &[
                ("width", width as f64),
                ("seed", seed as f64),
                ("stay_probability_1", stay),
            ],
        )
    }

    fn report(rows: &[TrialRow]) -> SweepReport {
        SweepReport {
            total: rows.len() as u64,
            done: rows.len() as u64,
            groups: super::super::groups::groupings(rows),
            ..SweepReport::empty("figure-test")
        }
    }

    /// The SVG's text elements, in order.
    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .filter_map(|element| element.split_once('>'))
            .filter_map(|(_, rest)| rest.split_once("</text>"))
            .map(|(text, _)| text.trim())
            .collect()
    }

    #[test]
    fn the_headline_figure_has_a_line_per_measured_bound_with_error_bars() {
        use super::super::bound_curves::{Curve, WidthPoint};
        use super::super::statistics::MeanInterval;
        let curve = |measurement: &str, label: &str, means: [f64; 3]| Curve {
            measurement: measurement.to_string(),
            label: label.to_string(),
            points: [16, 64, 256]
                .into_iter()
                .zip(means)
                .map(|(width, mean)| WidthPoint {
                    width,
                    summary: MeanInterval {
                        count: 3,
                        mean,
                        std_dev: Some(mean / 4.0),
                        interval: None,
                    },
                })
                .collect(),
            vacuous: Vec::new(),
        };
        let mut report = SweepReport {
            bound_curves: vec![
                curve(
                    "vc_gap_estimate",
                    "parameter-count (VC) bound",
                    [1.0, 4.0, 16.0],
                ),
                curve(
                    "path_norm_gap_estimate",
                    "path norm (ranking measure)",
                    [0.5, 0.4, 0.3],
                ),
                curve(
                    "error_gap",
                    "measured gap, 0-1 error (test − train)",
                    [0.1, 0.1, 0.1],
                ),
            ],
            ..SweepReport::empty("figure-test")
        };
        // Two trials of width 256 have a vacuous path-norm bound: marked, and said in the legend.
        report.bound_curves[1].vacuous = vec![(256, 2)];
        let svg = bounds_plot_svg(&report).expect("drawn");
        let texts = texts(&svg);
        for expected in [
            "figure-test: bounds and generalization gap vs width",
            "hidden width (units per layer)",
            "parameter-count (VC) bound",
            "path norm (ranking measure) (▲ 2 vacuous)",
            "measured gap, 0-1 error (test − train)",
            // Log axes label powers of ten as such.
            "10²",
        ] {
            assert!(texts.contains(&expected), "{expected} in {texts:?}");
        }
        // A 3-point line per series.
        let lines = polyline_lengths(&svg, false)
            .into_iter()
            .filter(|&points| points == 3)
            .count();
        assert_eq!(lines, 3, "{svg}");
        // Each point's error bar: a vertical segment with two caps, drawn as lines.
        assert!(svg.matches("<line").count() >= 9 * 3, "{svg}");
        // Before any trial finishes the figure is an empty chart, not an error.
        assert!(bounds_plot_svg(&SweepReport::empty("figure-test")).is_ok());
    }

    #[test]
    fn stay_vs_noise_has_a_line_per_width_with_its_legend_and_axes() {
        let mut rows = Vec::new();
        for width in [16, 256] {
            for (sigma, stay) in [(0.001, 1.0), (0.01, 0.5), (0.1, 0.0)] {
                for seed in 0..2 {
                    rows.push(trial(width, sigma, seed, stay));
                }
            }
        }
        let svg = stay_vs_noise_svg(&report(&rows))
            .expect("the sweep varies the probe noise")
            .expect("drawn");
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{svg}"
        );
        let texts = texts(&svg);
        for expected in [
            "figure-test: stay probability vs probe noise",
            "probe gradient-noise σ",
            "stay probability in the first probe ball",
            "width 16",
            "width 256",
        ] {
            assert!(texts.contains(&expected), "{expected} in {texts:?}");
        }
        // One 3-point line per width (σ = 0.001, 0.01, 0.1), drawn 2 px wide like its legend entry.
        let series = svg
            .lines()
            .filter(|line| line.starts_with("<polyline") && line.contains("stroke-width=\"2\""))
            .filter(|line| {
                line.split("points=\"")
                    .nth(1)
                    .is_some_and(|points| points.split_whitespace().count() == 3)
            })
            .count();
        assert_eq!(series, 2, "{svg}");

        let widths_only: Vec<TrialRow> = [16, 256].map(|width| trial(width, 0.01, 0, 1.0)).into();
        assert!(stay_vs_noise_svg(&report(&widths_only)).is_none());
    }
}
