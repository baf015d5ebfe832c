//! The grid of a loss-landscape slice (science.md §3.11), shared by the worker that evaluates it
//! and the report that draws it.

/// The grid coordinate of index `i` of `grid` points on [−extent, extent].
pub fn coordinate(i: u32, grid: u32, extent: f64) -> f64 {
    -extent + 2.0 * extent * f64::from(i) / f64::from(grid - 1)
}
