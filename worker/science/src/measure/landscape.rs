//! The loss-landscape slice of science.md §3.11: the training loss on a grid in a plane through
//! Θ̂, with the probe's snapshots projected on that plane. The plane is spanned by two orthonormal
//! directions: the top principal directions of the first replicate's snapshot cloud, or
//! filter-normalised random directions (Li et al. 2018) made orthonormal.

use rand::Rng;
use rand_distr::StandardNormal;
use vocabulary::LandscapePlane;

use crate::data::Dataset;
use crate::measure::cloud::cloud_spectrum;
use crate::measure::norms::normalize;
use crate::measurements::{LandscapePoint, LandscapeSlice};
use crate::model::evaluate::{EVALUATION_CHUNK, evaluate};
use crate::model::mlp::{Mlp, Workspace};
use crate::rng::{Stream, stream};

/// The extent is this much beyond the farthest projected snapshot (or the radius).
const MARGIN: f64 = 1.25;

/// Collects the probe's snapshots on the slice's plane while the probe runs.
pub struct PlaneProjection<'a> {
    plane: LandscapePlane,
    minimum: &'a [f32],
    directions: Option<[Vec<f64>; 2]>,
    /// The first replicate's snapshots, until its cloud gives the PCA plane.
    pending: Vec<(u64, Vec<f32>)>,
    points: Vec<LandscapePoint>,
}

impl<'a> PlaneProjection<'a> {
    /// Random directions are drawn from the trial's seed now; the PCA plane waits for the first
    /// replicate.
    pub fn new(mlp: &Mlp, minimum: &'a [f32], plane: LandscapePlane, seed: u64) -> Self {
        let directions = match plane {
            LandscapePlane::Random => Some(random_directions(mlp, minimum, seed)),
            LandscapePlane::Pca => None,
        };
        Self {
            plane,
            minimum,
            directions,
            pending: Vec::new(),
            points: Vec::new(),
        }
    }

    pub fn observe(&mut self, replicate: u32, step: u64, parameters: &[f32]) {
        match &self.directions {
            Some(directions) => {
                let (a, b) = project(parameters, self.minimum, directions);
                self.points.push(LandscapePoint {
                    replicate,
                    step,
                    a,
                    b,
                });
            }
            None => self.pending.push((step, parameters.to_vec())),
        }
    }

    /// After the first replicate: its cloud's top two principal directions become the plane, and
    /// its snapshots are projected. A cloud with fewer than two directions of spread leaves the
    /// plane undefined and the slice is not made.
    pub fn finish_replicate(&mut self) {
        if self.directions.is_some() || self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let snapshots: Vec<&[f32]> = pending
            .iter()
            .map(|(_, values)| values.as_slice())
            .collect();
        let Ok(cloud) = cloud_spectrum(&snapshots, 2) else {
            return;
        };
        let [first, second] = match <[Vec<f64>; 2]>::try_from(cloud.principal_directions) {
            Ok(directions) => directions,
            Err(_) => return,
        };
        if !(first.iter().chain(&second).all(|v| v.is_finite())) {
            return;
        }
        self.directions = Some([first, second]);
        for (step, values) in &pending {
            self.observe(0, *step, values);
        }
    }

    /// The slice: grid² training losses on the square of half-width
    /// [`MARGIN`] × max(farthest projected snapshot, `radius`). None without a plane.
    pub fn into_slice(
        self,
        mlp: &Mlp,
        train: &Dataset,
        grid: u32,
        radius: f64,
    ) -> Option<LandscapeSlice> {
        let directions = self.directions?;
        let farthest = self
            .points
            .iter()
            .map(|point| point.a.hypot(point.b))
            .fold(radius, f64::max);
        let extent = MARGIN * farthest;
        if !(extent.is_finite() && extent > 0.0) {
            return None;
        }
        let losses = loss_grid(mlp, self.minimum, train, &directions, grid, extent);
        Some(LandscapeSlice {
            plane: self.plane.as_str(),
            grid,
            extent,
            losses,
            trajectory: self.points,
        })
    }
}

pub use vocabulary::landscape::coordinate;

/// R̂(Θ̂ + a u + b v) on the grid, row j at b = coordinate(j), column i at a = coordinate(i).
pub fn loss_grid(
    mlp: &Mlp,
    minimum: &[f32],
    train: &Dataset,
    directions: &[Vec<f64>; 2],
    grid: u32,
    extent: f64,
) -> Vec<f32> {
    let mut workspace = Workspace::new(mlp, EVALUATION_CHUNK.min(train.len()).max(1));
    let mut point = vec![0.0f32; minimum.len()];
    let mut losses = Vec::with_capacity((grid as usize).pow(2));
    for j in 0..grid {
        let b = coordinate(j, grid, extent);
        for i in 0..grid {
            let a = coordinate(i, grid, extent);
            for (((slot, &m), &u), &v) in point
                .iter_mut()
                .zip(minimum)
                .zip(&directions[0])
                .zip(&directions[1])
            {
                *slot = (f64::from(m) + a * u + b * v) as f32;
            }
            losses.push(evaluate(mlp, &point, train, &mut workspace, None).loss as f32);
        }
    }
    losses
}

/// (⟨Θ − Θ̂, u⟩, ⟨Θ − Θ̂, v⟩).
fn project(parameters: &[f32], minimum: &[f32], directions: &[Vec<f64>; 2]) -> (f64, f64) {
    let mut coordinates = (0.0, 0.0);
    for (((&p, &m), &u), &v) in parameters
        .iter()
        .zip(minimum)
        .zip(&directions[0])
        .zip(&directions[1])
    {
        let difference = f64::from(p) - f64::from(m);
        coordinates.0 += difference * u;
        coordinates.1 += difference * v;
    }
    coordinates
}

/// Two Gaussian directions, each weight row rescaled to the norm of the matching row of Ŵ and
/// biases zeroed (filter normalisation), then Gram–Schmidt orthonormalised: the rows keep their
/// relative scales, and distances on the plane are parameter distances.
fn random_directions(mlp: &Mlp, minimum: &[f32], seed: u64) -> [Vec<f64>; 2] {
    let mut directions = [0u32, 1].map(|index| {
        let mut rng = stream(seed, Stream::Landscape(index));
        let mut direction = vec![0.0f64; minimum.len()];
        for shape in mlp.layers() {
            let range = shape.weight_range();
            for (row, row_minimum) in direction[range.clone()]
                .chunks_exact_mut(shape.fan_in)
                .zip(minimum[range].chunks_exact(shape.fan_in))
            {
                for slot in row.iter_mut() {
                    *slot = rng.sample(StandardNormal);
                }
                let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
                let target = row_minimum
                    .iter()
                    .map(|&w| f64::from(w).powi(2))
                    .sum::<f64>()
                    .sqrt();
                let scale = if norm > 0.0 { target / norm } else { 0.0 };
                for slot in row.iter_mut() {
                    *slot *= scale;
                }
            }
        }
        direction
    });
    let [first, second] = &mut directions;
    // A direction of zero length (a network of zero weights) stays zero: a flat slice.
    normalize(first);
    let overlap: f64 = first.iter().zip(second.iter()).map(|(a, b)| a * b).sum();
    for (slot, &along) in second.iter_mut().zip(first.iter()) {
        *slot -= overlap * along;
    }
    normalize(second);
    directions
}

#[cfg(test)]
mod tests {
    use super::*;
    use vocabulary::Activation;

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn random_directions_are_orthonormal_filter_shaped_and_bias_free() {
        let mlp = Mlp::new(5, 7, 3, 2, Activation::Relu, true);
        let mut rng = stream(1, Stream::Init);
        let minimum = mlp.initialize(vocabulary::Init::He, &mut rng);
        let [u, v] = random_directions(&mlp, &minimum, 9);
        assert!((dot(&u, &u) - 1.0).abs() < 1e-12);
        assert!((dot(&v, &v) - 1.0).abs() < 1e-12);
        assert!(dot(&u, &v).abs() < 1e-12);
        for shape in mlp.layers() {
            if let Some(bias) = shape.bias_range() {
                assert!(bias.clone().all(|i| u[i] == 0.0));
            }
            // Before orthonormalisation every row of u had the norm of Ŵ's row; one common
            // scale then applies to all: the ratios of row norms are Ŵ's.
            let range = shape.weight_range();
            let rows: Vec<(f64, f64)> = u[range.clone()]
                .chunks_exact(shape.fan_in)
                .zip(minimum[range].chunks_exact(shape.fan_in))
                .map(|(row, row_minimum)| {
                    let ours = row.iter().map(|x| x * x).sum::<f64>().sqrt();
                    let theirs = row_minimum
                        .iter()
                        .map(|&w| f64::from(w).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    (ours, theirs)
                })
                .collect();
            let ratio = rows[0].0 / rows[0].1;
            assert!(
                rows.iter()
                    .all(|(ours, theirs)| (ours / theirs / ratio - 1.0).abs() < 1e-9)
            );
        }
    }

    #[test]
    fn the_grid_holds_the_loss_at_each_point_and_the_pca_plane_contains_the_cloud() {
        let mlp = Mlp::new(3, 6, 2, 2, Activation::Tanh, true);
        let mut rng = stream(2, Stream::Init);
        let minimum = mlp.initialize(vocabulary::Init::He, &mut rng);
        let dimension = minimum.len();
        let train = Dataset {
            inputs: (0..40 * 3)
                .map(|i| ((i * 7) % 11) as f32 * 0.2 - 1.0)
                .collect(),
            labels: (0..40).map(|i| (i % 2) as u32).collect(),
            n: 40,
            dim: 3,
            classes: 2,
        };
        // Snapshots in a known plane: Θ̂ + s_k e + t_k f with e, f orthonormal coordinate axes.
        let (e, f) = (0usize, 5usize);
        let offsets: [(f64, f64); 4] = [(0.1, 0.0), (0.0, 0.2), (-0.1, 0.1), (0.3, -0.1)];
        let mut projection = PlaneProjection::new(&mlp, &minimum, LandscapePlane::Pca, 3);
        for (step, &(s, t)) in offsets.iter().enumerate() {
            let mut point = minimum.clone();
            point[e] += s as f32;
            point[f] += t as f32;
            projection.observe(0, step as u64 + 1, &point);
        }
        projection.finish_replicate();
        let directions = projection.directions.clone().expect("a plane");
        // Both directions lie in span(e, f): their other coordinates vanish.
        for direction in &directions {
            let outside: f64 = (0..dimension)
                .filter(|&i| i != e && i != f)
                .map(|i| direction[i].powi(2))
                .sum();
            assert!(outside < 1e-12, "{outside}");
        }
        // Projections preserve the snapshots' distances from Θ̂ (they lie in the plane).
        for (point, &(s, t)) in projection.points.iter().zip(&offsets) {
            let planar = (point.a * point.a + point.b * point.b).sqrt();
            let expected = (s * s + t * t).sqrt();
            assert!((planar - expected).abs() < 1e-6, "{planar} vs {expected}");
        }
        let slice = projection
            .into_slice(&mlp, &train, 3, 0.05)
            .expect("a slice");
        assert!((slice.extent - MARGIN * 0.316_227_766).abs() < 1e-5 * slice.extent);
        assert_eq!(slice.losses.len(), 9);
        // The centre of a 3 × 3 grid is Θ̂; a corner is Θ̂ − extent (u + v), evaluated directly.
        let mut workspace = Workspace::new(&mlp, 40);
        let at_minimum = evaluate(&mlp, &minimum, &train, &mut workspace, None).loss;
        assert!((f64::from(slice.losses[4]) - at_minimum).abs() < 1e-6);
        let corner: Vec<f32> = minimum
            .iter()
            .enumerate()
            .map(|(i, &m)| {
                (f64::from(m) - slice.extent * (directions[0][i] + directions[1][i])) as f32
            })
            .collect();
        let corner_loss = evaluate(&mlp, &corner, &train, &mut workspace, None).loss;
        assert!((f64::from(slice.losses[0]) - corner_loss).abs() < 1e-5);
    }
}
