//! The shape of the probe's iterate cloud (science.md §3.7): the spectrum of its covariance from
//! the N_s × N_s Gram matrix of the centred snapshots (N_s ≪ D), the participation ratio, k_90,
//! the top-2 share, principal directions, and the share of variance inside a given subspace
//! (for instance the top-k Hessian eigenvectors).

use crate::measure::eigen::{EigenError, symmetric_eigen};
use crate::model::simd::{dot_in_lanes, on_widest_simd};

#[derive(Debug, Clone, PartialEq)]
pub struct CloudSpectrum {
    /// Eigenvalues of X Xᵀ / N_s (X the centred N_s × D snapshots), descending; these are the
    /// non-zero variances of the cloud along its principal axes. Rounding negatives are clamped
    /// to zero.
    pub eigenvalues: Vec<f64>,
    /// (Σλ)² / Σλ²: 1 for a cloud along one axis, N for N equal axes. NaN for a single point.
    pub participation_ratio: f64,
    /// The fewest components whose variance reaches 90% of the total (0 for a single point).
    pub components_for_90_percent: usize,
    /// (λ_1 + λ_2) / Σλ.
    pub top_two_share: f64,
    /// Unit principal directions (length D) of the leading eigenvalues, as requested.
    pub principal_directions: Vec<Vec<f64>>,
}

/// The spectrum of the cloud of `snapshots` (each of length D), with the first
/// `directions` principal directions u_k = Xᵀ w_k / sqrt(N_s λ_k) (w_k the unit Gram
/// eigenvectors). Gram entries are accumulated in f64; cost O(N_s² D) plus a Jacobi
/// decomposition of the N_s × N_s matrix.
pub fn cloud_spectrum<S: AsRef<[f32]>>(
    snapshots: &[S],
    directions: usize,
) -> Result<CloudSpectrum, EigenError> {
    let count = snapshots.len();
    let dimension = snapshots
        .first()
        .map_or(0, |snapshot| snapshot.as_ref().len());
    let mut gram = vec![0.0; count * count];
    in_centred_blocks(snapshots, |_, rows| {
        for i in 0..count {
            for j in i..count {
                gram[i * count + j] += dot_in_lanes(&rows[i], &rows[j]);
            }
        }
    });
    for i in 0..count {
        for j in i..count {
            gram[i * count + j] /= count as f64;
            gram[j * count + i] = gram[i * count + j];
        }
    }
    let eigen = symmetric_eigen(&gram, count)?;
    let eigenvalues: Vec<f64> = eigen.values.iter().map(|&v| v.max(0.0)).collect();
    let shape = CloudShape::of(&eigenvalues);
    let leading = eigenvalues
        .iter()
        .take(directions)
        .take_while(|&&value| value > 0.0)
        .count();
    let mut principal_directions = vec![vec![0.0; dimension]; leading];
    if leading > 0 {
        in_centred_blocks(snapshots, |block, rows| {
            for (direction, weights) in principal_directions.iter_mut().zip(&eigen.vectors) {
                let direction = &mut direction[block.clone()];
                for (weight, row) in weights.iter().zip(rows) {
                    for (slot, x) in direction.iter_mut().zip(row) {
                        *slot += weight * x;
                    }
                }
            }
        });
    }
    for direction in &mut principal_directions {
        let norm = dot_in_lanes(direction, direction).sqrt();
        for slot in direction.iter_mut() {
            *slot /= norm;
        }
    }
    Ok(CloudSpectrum {
        participation_ratio: shape.participation_ratio,
        components_for_90_percent: shape.components_for_90_percent,
        top_two_share: shape.top_two_share,
        eigenvalues,
        principal_directions,
    })
}

/// The scale-free shape of a covariance spectrum, as [`CloudSpectrum`] defines its fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CloudShape {
    pub participation_ratio: f64,
    pub components_for_90_percent: usize,
    pub top_two_share: f64,
}

impl CloudShape {
    /// From variances in descending order, none negative.
    fn of(eigenvalues: &[f64]) -> Self {
        let total: f64 = eigenvalues.iter().sum();
        let squares: f64 = eigenvalues.iter().map(|v| v * v).sum();
        // The relative slack keeps an exact 90% split (e.g. variances 9 and 1) from rounding up.
        let threshold = 0.9 * total * (1.0 - 1e-12);
        let mut cumulative = 0.0;
        let mut components_for_90_percent = 0;
        for value in eigenvalues {
            if total == 0.0 || cumulative >= threshold {
                break;
            }
            cumulative += value;
            components_for_90_percent += 1;
        }
        Self {
            participation_ratio: total * total / squares,
            components_for_90_percent,
            top_two_share: eigenvalues.iter().take(2).sum::<f64>() / total,
        }
    }
}

/// What the cloud of snapshots at `steps` t_1 < … < t_N of a pure isotropic random walk from Θ̂
/// looks like: the reference a measured cloud's shape is read against (a "low-dimensional"
/// cloud means something only next to it). With independent N(0, s²) increments in each of D
/// coordinates, E⟨x_s, x_t⟩ = D s² min(t_s, t_t), and as D grows the snapshots' Gram matrix
/// concentrates on it; centring makes it C K C with K_st = min(t_s, t_t) and C = I − 11ᵀ/N.
/// Its spectrum's shape depends on the snapshot steps only, not on D, s or the walk's length
/// scale. For N = 5 evenly spaced snapshots the participation ratio is 2.11 and the top-2 share
/// 0.84; as N grows they tend to 2.5 and 0.76, the centred Brownian path's (see the tests).
pub fn random_walk_null(steps: &[u64]) -> Result<CloudShape, EigenError> {
    let count = steps.len();
    let kernel: Vec<f64> = (0..count * count)
        .map(|index| steps[index / count].min(steps[index % count]) as f64)
        .collect();
    // C K C: subtract row means, then column means (K is symmetric).
    let row_means: Vec<f64> = kernel
        .chunks_exact(count.max(1))
        .map(|row| row.iter().sum::<f64>() / count as f64)
        .collect();
    let grand_mean = row_means.iter().sum::<f64>() / count as f64;
    let centred: Vec<f64> = (0..count * count)
        .map(|index| {
            kernel[index] - row_means[index / count] - row_means[index % count] + grand_mean
        })
        .collect();
    let eigen = symmetric_eigen(&centred, count)?;
    let eigenvalues: Vec<f64> = eigen.values.iter().map(|&v| v.max(0.0)).collect();
    Ok(CloudShape::of(&eigenvalues))
}

/// Σ_i Σ_k ⟨x_i − x̄, u_k⟩² / Σ_i ||x_i − x̄||²: the share of the cloud's variance inside the span
/// of the orthonormal `basis` (vectors of length D, e.g. Lanczos Ritz vectors). NaN for a cloud
/// with no spread.
pub fn variance_share_in_subspace<S: AsRef<[f32]>>(snapshots: &[S], basis: &[Vec<f64>]) -> f64 {
    let mut total = 0.0;
    // ⟨x_i − x̄, u_k⟩ for every snapshot i and basis vector k, summed block by block.
    let mut along = vec![vec![0.0; basis.len()]; snapshots.len()];
    in_centred_blocks(snapshots, |block, rows| {
        for (row, along) in rows.iter().zip(&mut along) {
            total += dot_in_lanes(row, row);
            for (along, vector) in along.iter_mut().zip(basis) {
                *along += dot_in_lanes(row, &vector[block.clone()]);
            }
        }
    });
    let inside: f64 = along.iter().flatten().map(|value| value * value).sum();
    inside / total
}

/// Coordinates centred and read together: every snapshot's part of a block stays in cache while
/// all the products over it are summed.
const BLOCK: usize = 512;

/// Calls `work(block, rows)` for consecutive blocks of the coordinates, `rows[i]` the block of
/// x_i − x̄ (in f64, x̄ the mean over the snapshots): the snapshots are centred a block at a time
/// rather than copied whole, and each block is read from memory once for all the products.
fn in_centred_blocks<S: AsRef<[f32]>>(
    snapshots: &[S],
    mut work: impl FnMut(std::ops::Range<usize>, &[Vec<f64>]),
) {
    assert!(!snapshots.is_empty(), "a cloud needs at least one snapshot");
    let dimension = snapshots[0].as_ref().len();
    for snapshot in snapshots {
        assert_eq!(
            snapshot.as_ref().len(),
            dimension,
            "snapshots differ in length"
        );
    }
    let mut mean = vec![0.0f64; BLOCK];
    let mut rows = vec![vec![0.0f64; BLOCK]; snapshots.len()];
    on_widest_simd(
        #[inline(always)]
        || {
            for start in (0..dimension).step_by(BLOCK) {
                let block = start..(start + BLOCK).min(dimension);
                let mean = &mut mean[..block.len()];
                mean.fill(0.0);
                for snapshot in snapshots {
                    for (slot, &value) in mean.iter_mut().zip(&snapshot.as_ref()[block.clone()]) {
                        *slot += f64::from(value);
                    }
                }
                for slot in mean.iter_mut() {
                    *slot /= snapshots.len() as f64;
                }
                for (row, snapshot) in rows.iter_mut().zip(snapshots) {
                    row.clear();
                    row.extend(
                        snapshot.as_ref()[block.clone()]
                            .iter()
                            .zip(mean.iter())
                            .map(|(&value, centre)| f64::from(value) - centre),
                    );
                }
                work(block, &rows);
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points ±a e_1 and ±b e_2 around an offset c, in D = 5: the mean is c, and the four
    /// centred points have covariance (X Xᵀ/4) eigenvalues a²/2, b²/2, 0, 0.
    fn cross(a: f32, b: f32) -> Vec<Vec<f32>> {
        let offset = [1.0f32, -2.0, 0.5, 3.0, 0.0];
        let mut points = Vec::new();
        for (axis, length) in [(0, a), (0, -a), (1, b), (1, -b)] {
            let mut point = offset.to_vec();
            point[axis] += length;
            points.push(point);
        }
        points
    }

    /// Snapshots longer than several blocks (and not a whole number of them): the spectrum, the
    /// principal directions and the subspace share against an SVD of the centred matrix.
    #[test]
    fn a_long_cloud_matches_the_singular_value_decomposition_of_its_centred_snapshots() {
        use rand::Rng;
        use rand_distr::StandardNormal;
        let (count, dimension) = (6, 3 * BLOCK + 77);
        let mut rng = crate::rng::stream(3, crate::rng::Stream::Init);
        let snapshots: Vec<Vec<f32>> = (0..count)
            .map(|i| {
                (0..dimension)
                    .map(|k| {
                        let spread = if k % 7 == 0 { 3.0 } else { 0.2 };
                        1.0 + i as f32 * 0.01 + spread * rng.sample::<f32, _>(StandardNormal)
                    })
                    .collect()
            })
            .collect();
        let mean: Vec<f64> = (0..dimension)
            .map(|k| snapshots.iter().map(|s| f64::from(s[k])).sum::<f64>() / count as f64)
            .collect();
        let centred = nalgebra::DMatrix::from_fn(count, dimension, |i, k| {
            f64::from(snapshots[i][k]) - mean[k]
        });
        let svd = centred.clone().svd(false, true);
        let mut exact: Vec<(f64, usize)> = svd
            .singular_values
            .iter()
            .enumerate()
            .map(|(index, value)| (value * value / count as f64, index))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let spectrum = cloud_spectrum(&snapshots, 2).expect("converges");
        for (got, (want, _)) in spectrum.eigenvalues.iter().zip(&exact) {
            assert!((got - want).abs() < 1e-9 * exact[0].0, "{got} vs {want}");
        }
        let right = svd.v_t.expect("asked for");
        for (direction, &(_, index)) in spectrum.principal_directions.iter().zip(&exact) {
            let along: f64 = direction
                .iter()
                .zip(right.row(index).iter())
                .map(|(a, b)| a * b)
                .sum();
            assert!((along.abs() - 1.0).abs() < 1e-9, "{along}");
        }
        // The share along two of the coordinate axes, summed directly.
        let axes: Vec<Vec<f64>> = [0, 2 * BLOCK + 5]
            .iter()
            .map(|&axis| {
                let mut vector = vec![0.0; dimension];
                vector[axis] = 1.0;
                vector
            })
            .collect();
        let inside: f64 = (0..count)
            .map(|i| centred[(i, 0)].powi(2) + centred[(i, 2 * BLOCK + 5)].powi(2))
            .sum();
        let total: f64 = centred.iter().map(|value| value * value).sum();
        let share = variance_share_in_subspace(&snapshots, &axes);
        assert!((share - inside / total).abs() < 1e-12, "{share}");
    }

    #[test]
    fn a_cross_has_two_components_of_known_variance() {
        // a = 3, b = 1: λ = (4.5, 0.5); PR = 25/(20.25 + 0.25) = 1.219512; 90% at exactly k = 1
        // (4.5/5 = 0.9); top-2 share 1.
        let spectrum = cloud_spectrum(&cross(3.0, 1.0), 2).expect("converges");
        assert!((spectrum.eigenvalues[0] - 4.5).abs() < 1e-12);
        assert!((spectrum.eigenvalues[1] - 0.5).abs() < 1e-12);
        assert!(spectrum.eigenvalues[2..].iter().all(|v| v.abs() < 1e-12));
        assert!((spectrum.participation_ratio - 25.0 / 20.5).abs() < 1e-12);
        assert_eq!(spectrum.components_for_90_percent, 1);
        assert!((spectrum.top_two_share - 1.0).abs() < 1e-12);
        // The principal directions are ±e_1 then ±e_2.
        let first = &spectrum.principal_directions[0];
        assert!((first[0].abs() - 1.0).abs() < 1e-12 && first[1].abs() < 1e-12);
        let second = &spectrum.principal_directions[1];
        assert!((second[1].abs() - 1.0).abs() < 1e-12 && second[0].abs() < 1e-12);
        // a = b: two equal components, PR = 2, k_90 = 2.
        let round = cloud_spectrum(&cross(2.0, 2.0), 0).expect("converges");
        assert!((round.participation_ratio - 2.0).abs() < 1e-12);
        assert_eq!(round.components_for_90_percent, 2);
    }

    #[test]
    fn three_axes_share_their_variance_as_constructed() {
        // Six points ±(2, 0, 0), ±(0, 1, 0), ±(0, 0, 1) rotated by a 45° turn in the (0, 1)
        // plane: λ = 8/6, 2/6, 2/6; Σ = 2, Σλ² = (64 + 4 + 4)/36 = 2; PR = 4/2 = 2;
        // cumulative 0.667, 0.833, 1: k_90 = 3; top-2 share 10/12.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let axes = [[2.0 * h, 2.0 * h, 0.0], [-h, h, 0.0], [0.0, 0.0, 1.0]];
        let mut points = Vec::new();
        for axis in axes {
            points.push(axis.to_vec());
            points.push(axis.iter().map(|v| -v).collect::<Vec<f32>>());
        }
        let spectrum = cloud_spectrum(&points, 0).expect("converges");
        for (got, want) in spectrum
            .eigenvalues
            .iter()
            .zip([8.0 / 6.0, 2.0 / 6.0, 2.0 / 6.0])
        {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert!((spectrum.participation_ratio - 2.0).abs() < 1e-6);
        assert_eq!(spectrum.components_for_90_percent, 3);
        assert!((spectrum.top_two_share - 10.0 / 12.0).abs() < 1e-6);
    }

    /// Snapshot steps ⌈s T/N⌉, s = 1..N, as the probe takes them.
    fn evenly_spaced(count: u64, steps: u64) -> Vec<u64> {
        (1..=count).map(|s| (s * steps).div_ceil(count)).collect()
    }

    #[test]
    fn the_random_walk_null_matches_a_simulated_high_dimensional_walk() {
        use crate::rng::{Stream, stream};
        use rand::Rng;
        use rand_distr::StandardNormal;
        let (dimension, length) = (20_000, 200);
        for count in [5, 20] {
            let steps = evenly_spaced(count, length);
            let null = random_walk_null(&steps).expect("converges");
            let mut rng = stream(count, Stream::ProbeBatches(0));
            let mut position = vec![0.0f32; dimension];
            let mut snapshots = Vec::new();
            for step in 1..=length {
                for value in &mut position {
                    *value += 0.01 * rng.sample::<f32, _>(StandardNormal);
                }
                if steps.contains(&step) {
                    snapshots.push(position.clone());
                }
            }
            let walk = cloud_spectrum(&snapshots, 0).expect("converges");
            let case = format!("{count} snapshots: walk {walk:?} vs null {null:?}");
            assert!(
                (walk.participation_ratio / null.participation_ratio - 1.0).abs() < 0.03,
                "{case}"
            );
            assert!(
                (walk.top_two_share - null.top_two_share).abs() < 0.01,
                "{case}"
            );
        }
        // Many snapshots: the centred Brownian path, whose covariance eigenvalues fall as
        // 1/(kπ)² (Karhunen–Loève), so PR → (Σ 1/k²)²/Σ 1/k⁴ = (π²/6)²/(π⁴/90) = 2.5 and the
        // top-2 share → (1 + 1/4)/(π²/6) = 7.5/π². A pure walk already looks "low-dimensional".
        let many = random_walk_null(&evenly_spaced(300, 300)).expect("converges");
        assert!((many.participation_ratio - 2.5).abs() < 0.01, "{many:?}");
        let limit = 7.5 / std::f64::consts::PI.powi(2);
        assert!((many.top_two_share - limit).abs() < 0.003, "{many:?}");
        // Five snapshots (the old default): PR 40/19 and top-2 share 0.835410 (a separate Jacobi
        // of C K C by hand); the same shape for a walk ten times longer.
        for length in [1000, 10_000] {
            let five = random_walk_null(&evenly_spaced(5, length)).expect("converges");
            assert!(
                (five.participation_ratio - 40.0 / 19.0).abs() < 1e-9,
                "{five:?}"
            );
            assert!(
                (five.top_two_share - 0.835_410_196_6).abs() < 1e-9,
                "{five:?}"
            );
        }
    }

    #[test]
    fn the_subspace_share_counts_the_variance_along_the_basis() {
        // Cross a = 3, b = 1: variance 18 along e_1 and 2 along e_2 (sums of squares).
        let points = cross(3.0, 1.0);
        let e1 = vec![1.0, 0.0, 0.0, 0.0, 0.0];
        let diagonal = vec![
            std::f64::consts::FRAC_1_SQRT_2,
            std::f64::consts::FRAC_1_SQRT_2,
            0.0,
            0.0,
            0.0,
        ];
        assert!(
            (variance_share_in_subspace(&points, std::slice::from_ref(&e1)) - 0.9).abs() < 1e-12
        );
        // Along (e_1 + e_2)/√2: (18 + 2)/2 / 20 = 0.5.
        assert!((variance_share_in_subspace(&points, &[diagonal]) - 0.5).abs() < 1e-12);
        let single = cloud_spectrum(&[vec![1.0f32, 2.0]], 1).expect("converges");
        assert_eq!(single.components_for_90_percent, 0);
        assert!(single.principal_directions.is_empty());
    }
}
