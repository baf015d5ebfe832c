//! The Hessian spectrum at Θ̂ from matrix-free products (science.md §3.8): extreme eigenvalues by
//! Lanczos with full reorthogonalisation, the trace by Hutchinson's estimator, and the stability
//! margin 2/η − λ_max.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::measure::eigen::{EigenError, tridiagonal_eigen};
use crate::model::hvp::HessianOperator;
use crate::model::simd::{dot_in_lanes, on_widest_simd};

/// A symmetric linear map of R^D given by its products.
pub trait SymmetricOperator {
    fn dimension(&self) -> usize;
    /// `out = A v`.
    fn apply(&mut self, vector: &[f64], out: &mut [f64]);
}

impl SymmetricOperator for HessianOperator<'_> {
    fn dimension(&self) -> usize {
        HessianOperator::dimension(self)
    }

    fn apply(&mut self, vector: &[f64], out: &mut [f64]) {
        HessianOperator::apply(self, vector, out);
    }
}

/// A dense symmetric matrix (row-major) as an operator; for tests and small problems.
#[derive(Debug, Clone)]
pub struct DenseOperator {
    pub matrix: Vec<f64>,
    pub dimension: usize,
}

impl SymmetricOperator for DenseOperator {
    fn dimension(&self) -> usize {
        self.dimension
    }

    fn apply(&mut self, vector: &[f64], out: &mut [f64]) {
        for (row, slot) in self.matrix.chunks_exact(self.dimension).zip(out.iter_mut()) {
            *slot = row.iter().zip(vector).map(|(a, b)| a * b).sum();
        }
    }
}

/// Ritz values of a Lanczos run and the Ritz vectors of the top ones.
#[derive(Debug, Clone, PartialEq)]
pub struct LanczosSpectrum {
    /// The largest `k` Ritz values, descending: estimates of λ_1 ≥ … ≥ λ_k; fewer when the
    /// Krylov space ran out first (then they are exact, up to rounding).
    pub top: Vec<f64>,
    /// Unit Ritz vectors (length D) of `top`, in the same order.
    pub top_vectors: Vec<Vec<f64>>,
    /// The smallest Ritz value: an estimate of λ_min from above (see [`lanczos`]).
    pub smallest: f64,
    /// Lanczos steps taken (fewer than requested when an invariant subspace was found).
    pub steps: usize,
}

/// `steps` Lanczos iterations from a Gaussian start vector drawn from `rng`, each new basis
/// vector re-orthogonalised twice against all earlier ones (full reorthogonalisation, so no ghost
/// copies of converged eigenvalues appear); then the `k` largest Ritz values with their vectors,
/// and the smallest Ritz value. Ritz values interlace the spectrum, so `top[i] ≤ λ_i` and
/// `smallest ≥ λ_min`; with `steps ≈ 2k + 10` the top values are accurate when the top of the
/// spectrum is separated. λ_min from the smallest Ritz value is equivalent in exact arithmetic
/// to Lanczos on the shifted operator λ_max I − H (Krylov spaces are shift invariant), but it
/// converges slowly when the bottom of the spectrum is a dense cluster near zero, as at a
/// minimum: give it more steps when λ_min matters. Memory: `steps` vectors of D f64.
pub fn lanczos(
    operator: &mut impl SymmetricOperator,
    k: usize,
    steps: usize,
    rng: &mut impl Rng,
) -> Result<LanczosSpectrum, EigenError> {
    let dimension = operator.dimension();
    assert!(dimension > 0, "lanczos needs a non-empty space");
    let steps = steps.clamp(1, dimension);
    let k = k.min(steps);
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(steps);
    let mut start: Vec<f64> = (0..dimension).map(|_| rng.sample(StandardNormal)).collect();
    let start_norm = norm(&start);
    for value in &mut start {
        *value /= start_norm;
    }
    basis.push(start);
    let mut alphas = Vec::with_capacity(steps);
    let mut betas: Vec<f64> = Vec::with_capacity(steps);
    let mut work = vec![0.0; dimension];
    let mut operator_scale = 0.0f64;
    loop {
        let j = basis.len() - 1;
        operator.apply(&basis[j], &mut work);
        if work.iter().any(|v| !v.is_finite()) {
            return Err(EigenError::NotFinite);
        }
        let alpha = dot(&basis[j], &work);
        alphas.push(alpha);
        let previous = j.checked_sub(1).map(|i| (betas[i], &basis[i]));
        let beta = on_widest_simd(
            #[inline(always)]
            || {
                subtract_multiple(&mut work, alpha, &basis[j]);
                if let Some((beta, q)) = previous {
                    subtract_multiple(&mut work, beta, q);
                }
                for _ in 0..2 {
                    for q in &basis {
                        let overlap = dot_in_lanes(q, &work);
                        subtract_multiple(&mut work, overlap, q);
                    }
                }
                dot_in_lanes(&work, &work).sqrt()
            },
        );
        operator_scale = operator_scale.max(alpha.abs() + beta);
        if basis.len() == steps || beta <= 1e-12 * operator_scale {
            break;
        }
        betas.push(beta);
        basis.push(work.iter().map(|v| v / beta).collect());
    }
    let taken = alphas.len();
    // A Hessian of rank below k (every ReLU dead, say) exhausts the Krylov space early: it has
    // only `taken` Ritz pairs to give.
    let k = k.min(taken);
    let eigen = tridiagonal_eigen(&alphas, &betas[..taken - 1])?;
    let top_vectors = eigen.vectors[..k]
        .iter()
        .map(|coefficients| {
            let mut vector = vec![0.0; dimension];
            for (coefficient, q) in coefficients.iter().zip(&basis) {
                for (slot, value) in vector.iter_mut().zip(q) {
                    *slot += coefficient * value;
                }
            }
            vector
        })
        .collect();
    Ok(LanczosSpectrum {
        top: eigen.values[..k].to_vec(),
        top_vectors,
        smallest: eigen.values[taken - 1],
        steps: taken,
    })
}

/// Hutchinson's estimate of tr A from `probes` Rademacher vectors z (entries ±1 drawn from
/// `rng`): the mean of zᵀ A z, with its standard error (sample standard deviation / sqrt(probes);
/// NaN for one probe).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceEstimate {
    pub trace: f64,
    pub standard_error: f64,
}

pub fn hutchinson_trace(
    operator: &mut impl SymmetricOperator,
    probes: usize,
    rng: &mut impl Rng,
) -> TraceEstimate {
    let dimension = operator.dimension();
    let mut probe = vec![0.0; dimension];
    let mut image = vec![0.0; dimension];
    let mut samples = Vec::with_capacity(probes);
    for _ in 0..probes {
        for slot in &mut probe {
            *slot = if rng.random::<bool>() { 1.0 } else { -1.0 };
        }
        operator.apply(&probe, &mut image);
        samples.push(dot(&probe, &image));
    }
    let count = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / count;
    let variance = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (count - 1.0);
    TraceEstimate {
        trace: mean,
        standard_error: (variance / count).sqrt(),
    }
}

/// 2/η − λ_max: positive when gradient descent with step η is linearly stable at Θ̂.
pub fn stability_margin(learning_rate: f64, lambda_max: f64) -> f64 {
    heavy_ball_stability_margin(learning_rate, 0.0, lambda_max)
}

/// 2(1 + μ)/η − λ_max: positive when heavy-ball momentum (v ← μv + g, Θ ← Θ − ηv, which is
/// Θ_{t+1} = Θ_t − η g_t + μ(Θ_t − Θ_{t−1})) with 0 ≤ μ < 1 is linearly stable at Θ̂. Along an
/// eigen-direction with curvature λ the characteristic polynomial z² − (1 + μ − ηλ) z + μ has
/// both roots inside the unit circle exactly when 0 < ηλ < 2(1 + μ) (Polyak 1964; Goh 2017,
/// "Why momentum really works", §2).
pub fn heavy_ball_stability_margin(learning_rate: f64, momentum: f64, lambda_max: f64) -> f64 {
    2.0 * (1.0 + momentum) / learning_rate - lambda_max
}

/// Σ aᵢbᵢ summed in vector lanes (see [`dot_in_lanes`]), compiled for the widest instructions.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    on_widest_simd(
        #[inline(always)]
        || dot_in_lanes(a, b),
    )
}

/// `target` −= `factor` · `values`. Call it inside [`on_widest_simd`].
#[inline(always)]
fn subtract_multiple(target: &mut [f64], factor: f64, values: &[f64]) {
    for (slot, &value) in target.iter_mut().zip(values) {
        *slot -= factor * value;
    }
}

fn norm(values: &[f64]) -> f64 {
    dot(values, values).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hvp::tests::{dense_from_products, tiny_problem};
    use crate::model::mlp::Mlp;
    use crate::rng::{Stream, stream};
    use vocabulary::Activation;

    fn exact_descending(matrix: &[f64], n: usize) -> Vec<f64> {
        crate::measure::eigen::tests::exact_descending(&nalgebra::DMatrix::from_row_slice(
            n, n, matrix,
        ))
    }

    /// Q diag(λ) Qᵀ with a random orthogonal Q (QR of a Gaussian matrix) and the given spectrum.
    fn matrix_with_spectrum(spectrum: &[f64], rng: &mut impl Rng) -> Vec<f64> {
        let n = spectrum.len();
        let gaussian =
            nalgebra::DMatrix::from_fn(n, n, |_, _| rng.sample::<f64, _>(StandardNormal));
        let q = gaussian.qr().q();
        let matrix = &q
            * nalgebra::DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(spectrum))
            * q.transpose();
        (0..n * n).map(|k| matrix[(k / n, k % n)]).collect()
    }

    #[test]
    fn lanczos_finds_the_top_of_a_random_symmetric_matrix() {
        let mut rng = stream(7, Stream::PowerIteration);
        let n = 200;
        // A separated top (like a Hessian's outliers) above a bulk in [−0.5, 1].
        let mut spectrum: Vec<f64> = (0..n)
            .map(|i| -0.5 + 1.5 * i as f64 / (n - 1) as f64)
            .collect();
        for (slot, value) in spectrum
            .iter_mut()
            .rev()
            .zip([40.0, 25.0, 17.0, 9.0, 5.0, 3.0])
        {
            *slot = value;
        }
        let matrix = matrix_with_spectrum(&spectrum, &mut rng);
        let exact = exact_descending(&matrix, n);
        let mut operator = DenseOperator {
            matrix: matrix.clone(),
            dimension: n,
        };
        let k = 6;
        let result = lanczos(&mut operator, k, 2 * k + 10, &mut rng).expect("converges");
        assert_eq!(result.steps, 2 * k + 10);
        for (got, want) in result.top.iter().zip(&exact) {
            assert!((got - want).abs() < 1e-8 * want.abs(), "{got} vs {want}");
        }
        // The Ritz vectors are unit eigenvectors: ||A u − λ u|| small.
        let mut image = vec![0.0; n];
        for (value, vector) in result.top.iter().zip(&result.top_vectors) {
            operator.apply(vector, &mut image);
            let residual: f64 = image
                .iter()
                .zip(vector)
                .map(|(a, u)| (a - value * u).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(residual < 1e-5 * value.abs(), "residual {residual}");
            assert!((norm(vector) - 1.0).abs() < 1e-12);
        }
        // Interlacing: the smallest Ritz value lies above λ_min; with enough steps it reaches it.
        assert!(result.smallest >= exact[n - 1] - 1e-12);
        let full = lanczos(&mut operator, 1, 120, &mut rng).expect("converges");
        assert!(
            (full.smallest - exact[n - 1]).abs() < 1e-6,
            "{} vs {}",
            full.smallest,
            exact[n - 1]
        );
        // A gaussian (GOE-like) matrix, whose top is not separated, with more steps.
        let mut goe = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let value: f64 = rng.sample(StandardNormal);
                goe[i * n + j] = value;
                goe[j * n + i] = value;
            }
        }
        let exact = exact_descending(&goe, n);
        let mut operator = DenseOperator {
            matrix: goe,
            dimension: n,
        };
        let result = lanczos(&mut operator, 3, 100, &mut rng).expect("converges");
        for (got, want) in result.top.iter().zip(&exact) {
            assert!((got - want).abs() < 1e-6 * want.abs(), "{got} vs {want}");
        }
    }

    #[test]
    fn lanczos_stops_on_an_invariant_subspace() {
        // Rank 3: the Krylov space is exhausted after at most 4 steps.
        let mut rng = stream(8, Stream::PowerIteration);
        let n = 30;
        let mut spectrum = vec![0.0; n];
        spectrum[..3].copy_from_slice(&[3.0, 2.0, -1.0]);
        let mut operator = DenseOperator {
            matrix: matrix_with_spectrum(&spectrum, &mut rng),
            dimension: n,
        };
        let result = lanczos(&mut operator, 2, 20, &mut rng).expect("converges");
        assert!(result.steps <= 4, "{}", result.steps);
        assert!((result.top[0] - 3.0).abs() < 1e-10 && (result.top[1] - 2.0).abs() < 1e-10);
        assert!((result.smallest + 1.0).abs() < 1e-10);
    }

    #[test]
    fn lanczos_on_a_rank_one_hessian_of_dead_relus_returns_what_it_found() {
        // Every hidden ReLU dead: the loss depends only on the output biases, and with 2 classes
        // their Hessian is p(1 − p) [[1, −1], [−1, 1]], of rank 1. Asking for more eigenvalues than
        // the exhausted Krylov space holds Ritz pairs used to index past them.
        let problem = tiny_problem(Activation::Relu, true, 2, 5);
        let mlp = Mlp::new(3, 4, 2, 2, Activation::Relu, true);
        let mut parameters = mlp.initialize(vocabulary::Init::He, &mut stream(5, Stream::Init));
        let hidden = mlp.layers()[0].bias_range().expect("biases");
        parameters[hidden].fill(-100.0);
        let labels: Vec<u32> = problem.labels.iter().map(|label| label % 2).collect();
        let mut operator = HessianOperator::new(&mlp, &parameters, &problem.inputs, &labels, 4);
        let dimension = operator.dimension();
        let dense = dense_from_products(&mut operator);
        let exact = exact_descending(&dense, dimension);
        assert!(
            exact[0] > 1e-3 && exact[1].abs() < 1e-9,
            "{:?}",
            &exact[..3]
        );
        let mut rng = stream(6, Stream::PowerIteration);
        let asked = 5;
        let result = lanczos(&mut operator, asked, 20, &mut rng).expect("converges");
        // Two exact Krylov directions, and f32 rounding may leave a third.
        assert!(result.steps < asked, "{}", result.steps);
        assert_eq!(result.top.len(), result.top_vectors.len());
        assert!(result.top.len() <= result.steps);
        assert!(
            (result.top[0] - exact[0]).abs() < 1e-5 * exact[0],
            "{:?}",
            result.top
        );
    }

    #[test]
    fn lanczos_on_a_network_hessian_matches_its_exact_eigenvalues() {
        let problem = tiny_problem(Activation::Tanh, true, 3, 12);
        let mut operator = HessianOperator::new(
            &problem.mlp,
            &problem.parameters,
            &problem.inputs,
            &problem.labels,
            4,
        );
        let dimension = operator.dimension();
        let mut dense = dense_from_products(&mut operator);
        for i in 0..dimension {
            for j in 0..i {
                let mean = 0.5 * (dense[i * dimension + j] + dense[j * dimension + i]);
                dense[i * dimension + j] = mean;
                dense[j * dimension + i] = mean;
            }
        }
        let exact = exact_descending(&dense, dimension);
        let mut rng = stream(3, Stream::PowerIteration);
        // On the operator itself (f32 products, so agreement to f32 precision) ...
        let k = 3;
        let result = lanczos(&mut operator, k, dimension, &mut rng).expect("converges");
        let scale = exact[0].abs().max(exact[dimension - 1].abs());
        for (got, want) in result.top.iter().zip(&exact) {
            assert!((got - want).abs() < 1e-5 * scale, "{got} vs {want}");
        }
        assert!((result.smallest - exact[dimension - 1]).abs() < 1e-5 * scale);
        // ... and on the dense matrix with the short run 2k + 10.
        let mut dense_operator = DenseOperator {
            matrix: dense,
            dimension,
        };
        let short = lanczos(&mut dense_operator, k, 2 * k + 10, &mut rng).expect("converges");
        assert!(
            (short.top[0] - exact[0]).abs() < 1e-6 * scale,
            "{:?} vs {:?}",
            short.top,
            &exact[..k]
        );
    }

    #[test]
    fn hutchinson_is_unbiased_within_its_standard_error() {
        let mut rng = stream(10, Stream::PowerIteration);
        let n = 60;
        let spectrum: Vec<f64> = (0..n).map(|i| (i as f64 - 20.0) / 7.0).collect();
        let matrix = matrix_with_spectrum(&spectrum, &mut rng);
        let exact: f64 = (0..n).map(|i| matrix[i * n + i]).sum();
        let mut operator = DenseOperator {
            matrix,
            dimension: n,
        };
        let estimate = hutchinson_trace(&mut operator, 400, &mut rng);
        assert!(estimate.standard_error > 0.0);
        assert!(
            (estimate.trace - exact).abs() < 4.0 * estimate.standard_error,
            "{estimate:?} vs {exact}"
        );
        // The Rademacher variance is 2 Σ_{i≠j} A_ij²: the standard error should match it.
        let off: f64 = (0..n * n)
            .filter(|k| k / n != k % n)
            .map(|k| operator.matrix[k].powi(2))
            .sum();
        let predicted = (2.0 * off / 400.0).sqrt();
        assert!(
            (estimate.standard_error / predicted - 1.0).abs() < 0.2,
            "{} vs {predicted}",
            estimate.standard_error
        );
        // A diagonal matrix has zero estimator variance: exact with one probe.
        let mut diagonal = DenseOperator {
            matrix: vec![1.0, 0.0, 0.0, 0.0, 2.5, 0.0, 0.0, 0.0, -4.0],
            dimension: 3,
        };
        assert!((hutchinson_trace(&mut diagonal, 2, &mut rng).trace + 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_stability_margin_is_two_over_eta_minus_lambda_max() {
        assert_eq!(stability_margin(0.1, 15.0), 5.0);
        assert_eq!(stability_margin(0.5, 5.0), -1.0);
        // 2 (1 + 0.9) / 0.1 = 38.
        assert!((heavy_ball_stability_margin(0.1, 0.9, 30.0) - 8.0).abs() < 1e-12);
        assert_eq!(heavy_ball_stability_margin(0.1, 0.0, 15.0), 5.0);
    }

    /// |x_T| after T steps of v ← μv + λx, x ← x − ηv on the loss ½λx² from x_0 = 1: the
    /// optimiser of `train::sgd`, written out for one coordinate.
    fn heavy_ball_amplitude(learning_rate: f64, momentum: f64, curvature: f64) -> f64 {
        let (mut x, mut v) = (1.0f64, 0.0f64);
        for _ in 0..2000 {
            v = momentum * v + curvature * x;
            x -= learning_rate * v;
        }
        x.abs()
    }

    #[test]
    fn heavy_ball_on_a_quadratic_is_stable_exactly_when_its_margin_is_positive() {
        for (learning_rate, momentum) in [(0.1, 0.0), (0.1, 0.5), (0.05, 0.9), (0.2, 0.99)] {
            let edge = 2.0 * (1.0 + momentum) / learning_rate;
            for (curvature, stable) in [(0.98 * edge, true), (1.02 * edge, false)] {
                let margin = heavy_ball_stability_margin(learning_rate, momentum, curvature);
                assert_eq!(margin > 0.0, stable);
                let amplitude = heavy_ball_amplitude(learning_rate, momentum, curvature);
                let case = format!("η {learning_rate}, μ {momentum}, λ {curvature}: {amplitude}");
                if stable {
                    assert!(amplitude < 1e-3, "{case}");
                } else {
                    assert!(amplitude > 1e3, "{case}");
                }
            }
            // Without momentum's extra factor the training rate would look unstable already.
            if momentum > 0.0 {
                let between = 0.5 * (2.0 / learning_rate + edge);
                assert!(stability_margin(learning_rate, between) < 0.0);
                assert!(heavy_ball_amplitude(learning_rate, momentum, between) < 1e-3);
            }
        }
    }
}
