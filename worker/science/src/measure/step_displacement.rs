//! Θ_t − Θ̂ in f64, computed once per probe step and read by everything the probe tracks: the
//! distance d_t, the displacement's projection on the top Hessian vectors and each layer's
//! excursion. Each used to form the difference itself, in its own pass over the parameters.

/// The displacement of the current probe step; one buffer, reused, so no step allocates.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDisplacement {
    values: Vec<f64>,
}

impl StepDisplacement {
    pub fn new(dimension: usize) -> Self {
        Self {
            values: vec![0.0; dimension],
        }
    }

    /// Sets the displacement to `parameters` − `minimum` and returns its length ||Θ_t − Θ̂||₂.
    pub fn update(&mut self, parameters: &[f32], minimum: &[f32]) -> f64 {
        for ((slot, &p), &m) in self.values.iter_mut().zip(parameters).zip(minimum) {
            *slot = f64::from(p) - f64::from(m);
        }
        dot(&self.values, &self.values).sqrt()
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Σ_k ⟨Θ_t − Θ̂, u_k⟩² for orthonormal `basis` vectors u_k: the squared length of the
    /// displacement's projection on their span.
    pub fn squared_projection(&self, basis: &[Vec<f64>]) -> f64 {
        basis
            .iter()
            .map(|vector| {
                let along = dot(&self.values, vector);
                along * along
            })
            .sum()
    }
}

/// Lanes of [`dot`]: independent running sums the compiler keeps in vector registers.
const LANES: usize = 8;

/// Σ aᵢbᵢ in [`LANES`] running sums, added at the end. A single running sum waits on one
/// addition per coordinate (the probe's projections ran at that latency); the order of the
/// additions, and so the last bits, differ from it.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_projection_of_a_known_displacement() {
        // Θ − Θ̂ = (3, 4, 0): length 5; on e₁ and (e₂ + e₃)/√2: 3² + (4/√2)² = 9 + 8 = 17.
        let mut displacement = StepDisplacement::new(3);
        let length = displacement.update(&[4.0, 6.0, 1.0], &[1.0, 2.0, 1.0]);
        assert_eq!(length, 5.0);
        assert_eq!(displacement.values(), [3.0, 4.0, 0.0]);
        let half = std::f64::consts::FRAC_1_SQRT_2;
        let basis = vec![vec![1.0, 0.0, 0.0], vec![0.0, half, half]];
        assert!((displacement.squared_projection(&basis) - 17.0).abs() < 1e-12);
    }

    #[test]
    fn the_lane_sum_agrees_with_a_sequential_sum() {
        // Lengths around the lane width, values of mixed sign and scale.
        for length in [0, 1, 7, 8, 9, 23, 1000] {
            let a: Vec<f64> = (0..length)
                .map(|i| ((i * 37 % 11) as f64 - 5.0) * 1.3)
                .collect();
            let b: Vec<f64> = (0..length)
                .map(|i| ((i * 13 % 7) as f64 - 3.0) * 0.7)
                .collect();
            let sequential: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let scale: f64 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum::<f64>() + 1.0;
            assert!(
                (dot(&a, &b) - sequential).abs() <= 1e-14 * scale,
                "{length}"
            );
        }
    }
}
