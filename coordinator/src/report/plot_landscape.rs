//! The loss-landscape figure of one stored slice (science.md §3.11): the training loss on the
//! plane through Θ̂ as filled colour with contour lines, Θ̂ at the origin, the stagnation ball (the
//! probe's first radius) as a circle, and the probe's snapshots projected on the plane, each
//! replicate a path from Θ̂.

use plotters::prelude::*;

use super::plot::{WIDTH_COLORS, drawn_svg, finish_with_legend};
use crate::store::StoredSlice;

/// Contour levels drawn, evenly spaced in log loss between the grid's extremes.
const CONTOUR_LEVELS: usize = 8;

/// Viridis at five anchors, dark (low loss) to yellow (high).
const COLOR_MAP: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

fn color_at(fraction: f64) -> RGBColor {
    let position = fraction.clamp(0.0, 1.0) * (COLOR_MAP.len() - 1) as f64;
    let index = (position.floor() as usize).min(COLOR_MAP.len() - 2);
    let local = position - index as f64;
    let (low, high) = (COLOR_MAP[index], COLOR_MAP[index + 1]);
    let mix = |a: f64, b: f64| (a + (b - a) * local).round() as u8;
    RGBColor(mix(low.0, high.0), mix(low.1, high.1), mix(low.2, high.2))
}

/// The figure of `slice` from the sweep `sweep`.
pub fn landscape_svg(sweep: &str, slice: &StoredSlice) -> Result<String, String> {
    // Square axes once the label areas and caption are taken out, so the ball is drawn round.
    drawn_svg((800, 820), |root| draw_landscape(sweep, slice, root))
}

/// Grid coordinate `i` of `grid` points on [−extent, extent], as the worker laid the grid out.
fn coordinate(i: usize, grid: usize, extent: f64) -> f64 {
    vocabulary::landscape::coordinate(i as u32, grid as u32, extent)
}

type Segment = ((f64, f64), (f64, f64));

/// Marching squares: the segments where the bilinear surface through `values` (row-major, row j
/// at the second coordinate) crosses `level`.
pub fn contour_segments(values: &[f64], grid: usize, extent: f64, level: f64) -> Vec<Segment> {
    let at = |i: usize, j: usize| values[j * grid + i];
    let mut segments = Vec::new();
    for j in 0..grid.saturating_sub(1) {
        for i in 0..grid - 1 {
            let (x0, x1) = (coordinate(i, grid, extent), coordinate(i + 1, grid, extent));
            let (y0, y1) = (coordinate(j, grid, extent), coordinate(j + 1, grid, extent));
            // Corners counter-clockwise from (x0, y0); each edge from one corner to the next.
            let corners = [
                ((x0, y0), at(i, j)),
                ((x1, y0), at(i + 1, j)),
                ((x1, y1), at(i + 1, j + 1)),
                ((x0, y1), at(i, j + 1)),
            ];
            let mut crossings = Vec::with_capacity(4);
            for edge in 0..4 {
                let ((xa, ya), va) = corners[edge];
                let ((xb, yb), vb) = corners[(edge + 1) % 4];
                if (va < level) != (vb < level) && va.is_finite() && vb.is_finite() {
                    let t = (level - va) / (vb - va);
                    crossings.push((xa + t * (xb - xa), ya + t * (yb - ya)));
                }
            }
            for pair in crossings.chunks_exact(2) {
                segments.push((pair[0], pair[1]));
            }
        }
    }
    segments
}

fn draw_landscape<Backend: DrawingBackend>(
    sweep: &str,
    slice: &StoredSlice,
    root: DrawingArea<Backend, plotters::coord::Shift>,
) -> Result<(), String> {
    let grid = slice.grid as usize;
    let extent = slice.extent;
    // Losses are positive (cross-entropy, squared error); log10 spreads the basin's floor.
    let logs: Vec<f64> = slice
        .losses
        .iter()
        .map(|&loss| f64::from(loss).max(1e-12).log10())
        .collect();
    let (low, high) = logs
        .iter()
        .filter(|value| value.is_finite())
        .fold((f64::MAX, f64::MIN), |(low, high), &value| {
            (low.min(value), high.max(value))
        });
    let span = if high > low { high - low } else { 1.0 };
    let fraction = |value: f64| (value - low) / span;

    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{sweep}: training loss around Θ̂, width {} seed {} ({} plane)",
                slice.width, slice.seed, slice.plane
            ),
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(-extent..extent, -extent..extent)
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("direction 1 (parameter distance from Θ̂)")
        .y_desc("direction 2 (parameter distance from Θ̂)")
        .draw()
        .map_err(|error| error.to_string())?;

    let cells = (0..grid.saturating_sub(1)).flat_map(|j| {
        let logs = &logs;
        (0..grid - 1).map(move |i| {
            let mean = (logs[j * grid + i]
                + logs[j * grid + i + 1]
                + logs[(j + 1) * grid + i]
                + logs[(j + 1) * grid + i + 1])
                / 4.0;
            Rectangle::new(
                [
                    (coordinate(i, grid, extent), coordinate(j, grid, extent)),
                    (
                        coordinate(i + 1, grid, extent),
                        coordinate(j + 1, grid, extent),
                    ),
                ],
                color_at(fraction(mean)).filled(),
            )
        })
    });
    chart
        .draw_series(cells)
        .map_err(|error| error.to_string())?
        .label(format!(
            "colour: log10 training loss, {:.3} (dark) to {:.3} (yellow)",
            10f64.powf(low),
            10f64.powf(high)
        ))
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], color_at(0.5).filled()));
    for level_index in 1..=CONTOUR_LEVELS {
        let level = low + span * level_index as f64 / (CONTOUR_LEVELS + 1) as f64;
        let segments = contour_segments(&logs, grid, extent, level);
        chart
            .draw_series(
                segments.into_iter().map(|(from, to)| {
                    PathElement::new(vec![from, to], WHITE.mix(0.7).stroke_width(1))
                }),
            )
            .map_err(|error| error.to_string())?;
    }
    if let Some(radius) = slice.radius.filter(|radius| *radius > 0.0) {
        let circle: Vec<(f64, f64)> = (0..=120)
            .map(|k| {
                let angle = std::f64::consts::TAU * f64::from(k) / 120.0;
                (radius * angle.cos(), radius * angle.sin())
            })
            .collect();
        chart
            .draw_series(LineSeries::new(circle, WHITE.stroke_width(2)))
            .map_err(|error| error.to_string())?
            .label(format!(
                "stagnation ball (white), first probe radius r = {radius:.4}"
            ))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    }
    let replicates = slice
        .trajectory
        .iter()
        .map(|point| point.0)
        .max()
        .map_or(0, |last| last + 1);
    for replicate in 0..replicates {
        let color = WIDTH_COLORS[(replicate as usize + 3) % WIDTH_COLORS.len()];
        let mut path = vec![(0.0, 0.0)];
        path.extend(
            slice
                .trajectory
                .iter()
                .filter(|point| point.0 == replicate && point.2.is_finite() && point.3.is_finite())
                .map(|point| (point.2, point.3)),
        );
        let markers: Vec<(f64, f64)> = path[1..].to_vec();
        let series = chart
            .draw_series(LineSeries::new(path, color.stroke_width(2)))
            .map_err(|error| error.to_string())?;
        if replicate == 0 {
            series
                .label(format!("probe snapshots, {replicates} replicates from Θ̂"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .draw_series(
                markers
                    .into_iter()
                    .map(|point| Circle::new(point, 3, color.filled())),
            )
            .map_err(|error| error.to_string())?;
    }
    chart
        .draw_series(std::iter::once(Cross::new(
            (0.0, 0.0),
            7,
            RED.stroke_width(3),
        )))
        .map_err(|error| error.to_string())?
        .label("Θ̂, the trained point")
        .legend(|(x, y)| Cross::new((x + 10, y), 5, RED.stroke_width(3)));
    finish_with_legend(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::polyline_lengths;

    #[test]
    fn contours_of_a_paraboloid_are_circles_of_the_right_radius() {
        // f(a, b) = a² + b² on a 41 × 41 grid over [−1, 1]²: the level 0.25 is the circle r = 0.5.
        let grid = 41;
        let values: Vec<f64> = (0..grid * grid)
            .map(|index| {
                let (i, j) = (index % grid, index / grid);
                coordinate(i, grid, 1.0).powi(2) + coordinate(j, grid, 1.0).powi(2)
            })
            .collect();
        let segments = contour_segments(&values, grid, 1.0, 0.25);
        assert!(segments.len() > 40, "{}", segments.len());
        for (from, to) in &segments {
            for (x, y) in [from, to] {
                // Linear interpolation of a quadratic on cells of side 0.05: within 1e-3.
                assert!(((x * x + y * y).sqrt() - 0.5).abs() < 2e-3, "({x}, {y})");
            }
        }
        assert!(contour_segments(&values, grid, 1.0, 5.0).is_empty());
    }

    #[test]
    fn the_figure_shows_the_grid_the_ball_and_each_replicate() {
        let grid = 5;
        let slice = StoredSlice {
            trial_id: "t".to_string(),
            width: 64,
            seed: 2,
            plane: "pca".to_string(),
            grid: grid as u32,
            extent: 1.0,
            losses: (0..grid * grid)
                .map(|index| 0.1 + (index % grid) as f32 * 0.2 + (index / grid) as f32 * 0.05)
                .collect(),
            trajectory: vec![
                (0, 10, 0.1, 0.2),
                (0, 20, 0.3, 0.1),
                (1, 10, -0.2, 0.1),
                (1, 20, -0.4, -0.1),
            ],
            radius: Some(0.5),
        };
        let svg = landscape_svg("slice-test", &slice).expect("drawn");
        for expected in [
            "slice-test: training loss around Θ̂, width 64 seed 2 (pca plane)",
            "direction 1 (parameter distance from Θ̂)",
            "stagnation ball (white), first probe radius r = 0.5000",
            "probe snapshots, 2 replicates from Θ̂",
            "log10 training loss, 0.100 (dark) to 1.100 (yellow)",
        ] {
            assert!(svg.contains(expected), "{expected} in {svg}");
        }
        // (grid − 1)² filled cells, plus the legend's swatches and background.
        let cells = svg.matches("<rect").count();
        assert!(cells >= 16, "{cells}");
        // Each replicate's path: Θ̂ then its two snapshots.
        let paths = polyline_lengths(&svg, true)
            .into_iter()
            .filter(|&points| points == 3)
            .count();
        assert_eq!(paths, 2, "{svg}");
    }
}
