//! Θ_t − Θ̂ in f64, computed once per probe step and read by everything the probe tracks: the
//! distance d_t, the displacement's projection on the top Hessian vectors and each layer's
//! excursion. The distance and the projection are summed as the difference is formed, in one
//! pass over the parameters and the basis.

use crate::model::simd::{F64_LANES, LaneSums, on_widest_simd};

/// Coordinates formed and then projected together: their differences stay in the L1 cache
/// while each basis vector's part is read.
const BLOCK: usize = 1024;

/// The displacement of the current probe step; one buffer, reused, so no step allocates.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDisplacement {
    values: Vec<f64>,
    /// Orthonormal vectors (the Hessian's top eigenvectors) rounded to f32: the projection reads
    /// them every step, and at f64 they were most of the probe's memory traffic. Their rounding
    /// (relative 6 · 10⁻⁸) is far below their accuracy as eigenvectors.
    basis: Vec<Vec<f32>>,
    /// The running sums of each basis vector's part, reused.
    along: Vec<LaneSums>,
}

/// What one step's displacement measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Displacement {
    /// ||Θ_t − Θ̂||₂.
    pub length: f64,
    /// Σ_k ⟨Θ_t − Θ̂, u_k⟩² over the basis: the squared length of the displacement's projection
    /// on its span (0 without a basis).
    pub squared_projection: f64,
}

impl StepDisplacement {
    pub fn new(dimension: usize, basis: &[Vec<f64>]) -> Self {
        Self {
            values: vec![0.0; dimension],
            basis: basis
                .iter()
                .map(|vector| vector.iter().map(|&value| value as f32).collect())
                .collect(),
            along: vec![LaneSums::default(); basis.len()],
        }
    }

    /// Sets the displacement to `parameters` − `minimum`; its length and projection.
    pub fn update(&mut self, parameters: &[f32], minimum: &[f32]) -> Displacement {
        let (values, basis, along) = (&mut self.values, &self.basis, &mut self.along);
        let squares = on_widest_simd(
            #[inline(always)]
            || match basis.len() {
                0 => form_and_project::<0>(values, parameters, minimum, basis, along),
                1 => form_and_project::<1>(values, parameters, minimum, basis, along),
                2 => form_and_project::<2>(values, parameters, minimum, basis, along),
                3 => form_and_project::<3>(values, parameters, minimum, basis, along),
                4 => form_and_project::<4>(values, parameters, minimum, basis, along),
                _ => form_then_project(values, parameters, minimum, basis, along),
            },
        );
        Displacement {
            length: squares.total().sqrt(),
            squared_projection: along.iter().map(|lanes| lanes.total().powi(2)).sum(),
        }
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }
}

/// Forms each [`F64_LANES`] coordinates of the displacement and adds them to its squared length
/// and to each of the `VECTORS` basis vectors' parts while they are in registers: one pass, each
/// value read once. Returns the squared length's sums; `along` gets the parts'. The sums are those of
/// [`form_then_project`], in the same order.
#[inline(always)]
fn form_and_project<const VECTORS: usize>(
    values: &mut [f64],
    parameters: &[f32],
    minimum: &[f32],
    basis: &[Vec<f32>],
    along: &mut [LaneSums],
) -> LaneSums {
    let vectors: [&[f32]; VECTORS] = std::array::from_fn(|index| basis[index].as_slice());
    let mut parts = [[0.0; F64_LANES]; VECTORS];
    let mut squares = [0.0; F64_LANES];
    let whole = values.len() - values.len() % F64_LANES;
    let (chunks, rest) = values.split_at_mut(whole);
    for (chunk, start) in chunks
        .chunks_exact_mut(F64_LANES)
        .zip((0..).step_by(F64_LANES))
    {
        let (point, centre) = (
            &parameters[start..start + F64_LANES],
            &minimum[start..start + F64_LANES],
        );
        let mut difference = [0.0; F64_LANES];
        for lane in 0..F64_LANES {
            difference[lane] = f64::from(point[lane]) - f64::from(centre[lane]);
            squares[lane] += difference[lane] * difference[lane];
        }
        chunk.copy_from_slice(&difference);
        for (sums, vector) in parts.iter_mut().zip(vectors) {
            let vector = &vector[start..start + F64_LANES];
            for lane in 0..F64_LANES {
                sums[lane] += difference[lane] * f64::from(vector[lane]);
            }
        }
    }
    form_difference(rest, &parameters[whole..], &minimum[whole..]);
    let mut total = LaneSums::from_lanes(squares);
    total.add(rest, rest, |d| d);
    for ((lanes, sums), vector) in along.iter_mut().zip(parts).zip(vectors) {
        *lanes = LaneSums::from_lanes(sums);
        lanes.add(rest, &vector[whole..], f64::from);
    }
    total
}

/// [`form_and_project`] for any number of basis vectors: each block of coordinates is formed,
/// then read once per sum while it is in the L1 cache.
#[inline(always)]
fn form_then_project(
    values: &mut [f64],
    parameters: &[f32],
    minimum: &[f32],
    basis: &[Vec<f32>],
    along: &mut [LaneSums],
) -> LaneSums {
    let mut squares = LaneSums::default();
    along.fill(LaneSums::default());
    for (block, start) in values.chunks_mut(BLOCK).zip((0..).step_by(BLOCK)) {
        let end = start + block.len();
        form_difference(block, &parameters[start..end], &minimum[start..end]);
        squares.add(block, block, |d| d);
        for (lanes, vector) in along.iter_mut().zip(basis) {
            lanes.add(block, &vector[start..end], f64::from);
        }
    }
    squares
}

/// `values` = `point` − `centre`, in f64.
#[inline(always)]
fn form_difference(values: &mut [f64], point: &[f32], centre: &[f32]) {
    for ((slot, &p), &m) in values.iter_mut().zip(point).zip(centre) {
        *slot = f64::from(p) - f64::from(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_projection_of_a_known_displacement() {
        // Θ − Θ̂ = (3, 4, 0): length 5; on e₁ and (e₂ + e₃)/√2: 3² + (4/√2)² = 9 + 8 = 17.
        let half = std::f64::consts::FRAC_1_SQRT_2;
        let basis = vec![vec![1.0, 0.0, 0.0], vec![0.0, half, half]];
        let mut displacement = StepDisplacement::new(3, &basis);
        let measured = displacement.update(&[4.0, 6.0, 1.0], &[1.0, 2.0, 1.0]);
        assert_eq!(measured.length, 5.0);
        assert_eq!(displacement.values(), [3.0, 4.0, 0.0]);
        // The basis is rounded to f32: 1/√2 to within 3 · 10⁻⁸ relative.
        assert!((measured.squared_projection - 17.0).abs() < 1e-6);
        let without = StepDisplacement::new(3, &[]).update(&[4.0, 6.0, 1.0], &[1.0, 2.0, 1.0]);
        assert_eq!(without.squared_projection, 0.0);
    }

    #[test]
    fn the_one_pass_sums_are_those_of_the_blockwise_passes() {
        // Every basis size the one pass is compiled for, lengths around the lane width and over
        // a block, so that both the whole chunks and the rest are summed.
        for length in [0, 5, 8, 13, 1024, 2 * BLOCK + 11] {
            let wave = |i: usize, period: usize| ((i * 37 + period) % period) as f32 / 7.0 - 0.4;
            let parameters: Vec<f32> = (0..length).map(|i| wave(i, 11)).collect();
            let minimum: Vec<f32> = (0..length).map(|i| wave(i, 5)).collect();
            for vectors in 0..=4 {
                let basis: Vec<Vec<f32>> = (0..vectors)
                    .map(|k| (0..length).map(|i| wave(i + k, 13)).collect())
                    .collect();
                let mut one_pass = (vec![0.0; length], vec![LaneSums::default(); vectors]);
                let mut blockwise = one_pass.clone();
                let squares = match vectors {
                    0 => form_and_project::<0>,
                    1 => form_and_project::<1>,
                    2 => form_and_project::<2>,
                    3 => form_and_project::<3>,
                    _ => form_and_project::<4>,
                }(
                    &mut one_pass.0,
                    &parameters,
                    &minimum,
                    &basis,
                    &mut one_pass.1,
                );
                let reference = form_then_project(
                    &mut blockwise.0,
                    &parameters,
                    &minimum,
                    &basis,
                    &mut blockwise.1,
                );
                assert_eq!(squares.total().to_bits(), reference.total().to_bits());
                assert_eq!(one_pass.0, blockwise.0);
                for (one, other) in one_pass.1.iter().zip(&blockwise.1) {
                    assert_eq!(one.total().to_bits(), other.total().to_bits(), "{length}");
                }
            }
        }
    }
}
