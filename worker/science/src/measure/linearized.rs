//! Predictions of the linearised probe dynamics e_{t+1} = (I − ηH) e_t − η ξ_t, ξ_t ~ N(0, σ² I),
//! e_0 = 0 (science.md §3.8): per Hessian eigen-direction i the coordinate is Gaussian with
//! variance v_{i,t}, and the exit probability from a ball follows from Laurent–Massart.

/// v_i = η σ² / (λ (2 − η λ)), the stationary variance along an eigen-direction with eigenvalue
/// λ; `None` outside 0 < ηλ < 2, where no stationary law exists (flat or unstable direction).
pub fn stationary_variance(learning_rate: f64, noise_sigma: f64, eigenvalue: f64) -> Option<f64> {
    let eta_lambda = learning_rate * eigenvalue;
    (eta_lambda > 0.0 && eta_lambda < 2.0)
        .then(|| learning_rate * noise_sigma * noise_sigma / (eigenvalue * (2.0 - eta_lambda)))
}

/// v_{i,t} = η² σ² Σ_{s<t} (1 − ηλ)^{2s}, the exact variance after `steps` steps from e_0 = 0,
/// for every λ: it tends to [`stationary_variance`] for 0 < ηλ < 2, equals η² σ² t for λ = 0
/// (diffusion along a flat direction) and grows geometrically for λ < 0 or ηλ > 2. Computed
/// as η² σ² (1 − q^t)/(1 − q), q = (1 − ηλ)², through `ln_1p`/`expm1` so that tiny ηλ keeps its
/// precision.
pub fn variance_after_steps(
    learning_rate: f64,
    noise_sigma: f64,
    eigenvalue: f64,
    steps: u64,
) -> f64 {
    let per_step = learning_rate * learning_rate * noise_sigma * noise_sigma;
    if steps == 0 {
        return 0.0;
    }
    let eta_lambda = learning_rate * eigenvalue;
    let one_minus_q = eta_lambda * (2.0 - eta_lambda);
    if one_minus_q == 0.0 {
        return per_step * steps as f64;
    }
    // ln q = 2 ln|1 − ηλ| (−∞ at ηλ = 1, where q^t = 0); q^t − 1 = expm1(t ln q).
    let log_q = if eta_lambda < 1.0 {
        2.0 * (-eta_lambda).ln_1p()
    } else {
        2.0 * (eta_lambda - 1.0).ln()
    };
    let sum = -(steps as f64 * log_q).exp_m1() / one_minus_q;
    per_step * sum
}

/// The Laurent–Massart exponent x ≥ 0 solving r² = a + 2b sqrt(x) + 2c x for the Gaussian
/// vector with independent coordinate variances `variances`: a = Σ v_i, b = sqrt(Σ v_i²),
/// c = max v_i. Then P(||e||² ≥ r²) ≤ exp(−x). Zero when r² ≤ a (no tail bound); infinite when
/// all variances are zero and r > 0.
pub fn laurent_massart_exponent(variances: &[f64], radius: f64) -> f64 {
    let a: f64 = variances.iter().sum();
    let b = variances.iter().map(|v| v * v).sum::<f64>().sqrt();
    let c = variances.iter().copied().fold(0.0, f64::max);
    exponent_from_moments(a, b, c, radius)
}

/// [`laurent_massart_exponent`] from a = Σ v_i, b = sqrt(Σ v_i²) and c = max v_i.
fn exponent_from_moments(a: f64, b: f64, c: f64, radius: f64) -> f64 {
    let excess = radius * radius - a;
    if excess <= 0.0 {
        return 0.0;
    }
    if c == 0.0 {
        return f64::INFINITY;
    }
    // 2c u² + 2b u − excess = 0 with u = sqrt(x) ≥ 0.
    let root = (-b + (b * b + 2.0 * c * excess).sqrt()) / (2.0 * c);
    root * root
}

/// min(1, T · exp(−x)): the union bound over T steps of the Laurent–Massart tail for
/// P(max_{t≤T} ||e_t|| > r). Pass the variances at the horizon T ([`variance_after_steps`] with
/// t = T, which is the largest over t ≤ T along every direction since v_{i,t} grows with t), and
/// every direction's variance, not only those of the resolved top eigenvalues: leaving the bulk
/// out understates a, b and c.
pub fn predicted_exit_probability(variances: &[f64], radius: f64, steps: u64) -> f64 {
    let x = laurent_massart_exponent(variances, radius);
    (steps as f64 * (-x).exp()).min(1.0)
}

/// The linearised probe around Θ̂ with the Hessian known only in part: its top eigenvalues one by
/// one, and the other `bulk_count` directions taken to share the mean eigenvalue the trace leaves
/// them, (tr H − Σ top)/(D − k), clamped at 0 (flat when no trace was estimated). The noise is
/// taken as isotropic with the probe's mean per-coordinate variance, and mini-batch noise is left
/// out: the prediction is of the injected Gaussian noise alone.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearizedProbe {
    pub learning_rate: f64,
    /// sqrt(E||ξ||² / D): the root-mean-square standard deviation of one coordinate's noise.
    pub noise_sigma: f64,
    pub top_eigenvalues: Vec<f64>,
    pub bulk_eigenvalue: f64,
    pub bulk_count: usize,
}

impl LinearizedProbe {
    /// `trace` NaN when unknown; `dimension` the number of parameters D.
    pub fn new(
        learning_rate: f64,
        noise_sigma: f64,
        top_eigenvalues: &[f64],
        trace: f64,
        dimension: usize,
    ) -> Self {
        let bulk_count = dimension.saturating_sub(top_eigenvalues.len());
        let rest = trace - top_eigenvalues.iter().sum::<f64>();
        let bulk_eigenvalue = if bulk_count > 0 && rest.is_finite() {
            (rest / bulk_count as f64).max(0.0)
        } else {
            0.0
        };
        Self {
            learning_rate,
            noise_sigma,
            top_eigenvalues: top_eigenvalues.to_vec(),
            bulk_eigenvalue,
            bulk_count,
        }
    }

    /// Every direction's variance v_{i,t} after `steps` steps from Θ̂.
    pub fn variances_after(&self, steps: u64) -> PredictedVariances {
        let variance = |eigenvalue| {
            variance_after_steps(self.learning_rate, self.noise_sigma, eigenvalue, steps)
        };
        PredictedVariances {
            top: self.top_eigenvalues.iter().map(|&l| variance(l)).collect(),
            bulk: variance(self.bulk_eigenvalue),
            bulk_count: self.bulk_count,
        }
    }

    /// E||e_t||² = Σ_i v_{i,t}: the predicted mean-squared displacement after `steps` steps.
    pub fn mean_squared_distance(&self, steps: u64) -> f64 {
        self.variances_after(steps).total()
    }

    /// An estimate of the stay probability of the ball of `radius` over `steps` steps:
    /// 1 − [`predicted_exit_probability`]. Not a lower bound, though the union bound and
    /// Laurent–Massart each err low: the bulk directions share the mean eigenvalue, and since a
    /// direction's variance is convex in its eigenvalue (Jensen) that understates the spread and
    /// overstates the stay probability; mini-batch noise and the drift of an unpolished minimum
    /// are left out too.
    pub fn stay_probability(&self, radius: f64, steps: u64) -> f64 {
        1.0 - self.variances_after(steps).exit_probability(radius, steps)
    }
}

/// A lower bound on the probe's stay probability (science.md §3.8, issue 15): the linearised
/// probe with every unresolved direction at the lowest curvature the spectrum may have,
/// λ_lo = min(0, λ_min) (flat when the Hessian is positive semi-definite), and isotropic noise at
/// the largest per-coordinate σ. Along a direction with curvature λ the variance after t steps
/// is η²σ² Σ_{s<t} (1 − ηλ)^{2s}, non-decreasing in |1 − ηλ|, so for every λ in [λ_lo, 2/η] it is
/// at most the value at λ_lo; with noise covariance Σ ≼ σ_max² I the covariance of e_t is at most
/// the bound's in the Loewner order, a centred Gaussian's P(||e|| > r) grows with its covariance
/// (Anderson's theorem), and Laurent–Massart with a union bound over steps bounds the exit
/// probability from above. It holds for the linearised dynamics from Θ̂ with Gaussian noise
/// alone, with the top eigenvalues as given: a mini-batch probe adds noise and an unpolished
/// minimum adds drift, which the trial's flags `probe_full_batch` and `minimum_polished` report.
#[derive(Debug, Clone, PartialEq)]
pub struct StayProbabilityBound {
    probe: LinearizedProbe,
}

impl StayProbabilityBound {
    /// None outside its assumptions: some top eigenvalue above 2/η (the probe is linearly
    /// unstable there; the stored `probe_stability_margin` is then negative) or not finite.
    pub fn new(
        learning_rate: f64,
        largest_noise_sigma: f64,
        top_eigenvalues: &[f64],
        lambda_min: f64,
        dimension: usize,
    ) -> Option<Self> {
        let edge = 2.0 / learning_rate;
        let stable = top_eigenvalues
            .iter()
            .all(|&lambda| lambda.is_finite() && lambda <= edge);
        if !stable || !lambda_min.is_finite() || !largest_noise_sigma.is_finite() {
            return None;
        }
        let lowest = lambda_min.min(0.0);
        Some(Self {
            probe: LinearizedProbe {
                learning_rate,
                noise_sigma: largest_noise_sigma,
                top_eigenvalues: top_eigenvalues.iter().map(|&l| l.max(lowest)).collect(),
                bulk_eigenvalue: lowest,
                bulk_count: dimension.saturating_sub(top_eigenvalues.len()),
            },
        })
    }

    /// P(the probe stays within `radius` of Θ̂ for `steps` steps) ≥ this.
    pub fn stay_probability(&self, radius: f64, steps: u64) -> f64 {
        self.probe.stay_probability(radius, steps)
    }
}

/// Per-direction variances: the top directions one by one, then `bulk_count` equal ones.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedVariances {
    pub top: Vec<f64>,
    pub bulk: f64,
    pub bulk_count: usize,
}

impl PredictedVariances {
    /// a = Σ v_i.
    pub fn total(&self) -> f64 {
        self.top.iter().sum::<f64>() + self.bulk * self.bulk_count as f64
    }

    /// min(1, T e^{−x}) as [`predicted_exit_probability`], without listing the bulk one by one.
    pub fn exit_probability(&self, radius: f64, steps: u64) -> f64 {
        let squares = self.top.iter().map(|v| v * v).sum::<f64>()
            + self.bulk * self.bulk * self.bulk_count as f64;
        let bulk_max = if self.bulk_count > 0 { self.bulk } else { 0.0 };
        let largest = self.top.iter().copied().fold(bulk_max, f64::max);
        let x = exponent_from_moments(self.total(), squares.sqrt(), largest, radius);
        (steps as f64 * (-x).exp()).min(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::StandardNormal;

    #[test]
    fn variances_match_hand_computation() {
        // η = 0.1, σ = 2, λ = 5: ηλ = 0.5, v = 0.1·4/(5·1.5) = 0.053333.
        let v = stationary_variance(0.1, 2.0, 5.0).expect("stable");
        assert!((v - 0.4 / 7.5).abs() < 1e-15);
        assert_eq!(stationary_variance(0.1, 2.0, 0.0), None);
        assert_eq!(stationary_variance(0.1, 2.0, 20.0), None);
        assert_eq!(stationary_variance(0.1, 2.0, -1.0), None);
        // After t steps: η²σ² Σ_{s<t} 0.25^s; t = 3: 0.04 · (1 + 0.25 + 0.0625) = 0.0525.
        assert!((variance_after_steps(0.1, 2.0, 5.0, 3) - 0.0525).abs() < 1e-15);
        assert!((variance_after_steps(0.1, 2.0, 5.0, 10_000) - v).abs() < 1e-15);
        // λ = 0: η²σ² t = 0.04 · 7.
        assert!((variance_after_steps(0.1, 2.0, 0.0, 7) - 0.28).abs() < 1e-15);
        // ηλ = 1: only the last noise survives, 0.04 for every t ≥ 1.
        assert!((variance_after_steps(0.1, 2.0, 10.0, 5) - 0.04).abs() < 1e-15);
        // ηλ = 2: |1 − ηλ| = 1, growth η²σ² t.
        assert!((variance_after_steps(0.1, 2.0, 20.0, 4) - 0.16).abs() < 1e-14);
        // ηλ = 3 (unstable): q = 4, t = 3: 0.04 (1 + 4 + 16) = 0.84.
        assert!((variance_after_steps(0.1, 2.0, 30.0, 3) - 0.84).abs() < 1e-13);
        // λ < 0: ηλ = −0.5, q = 2.25, t = 2: 0.04 · 3.25 = 0.13.
        assert!((variance_after_steps(0.1, 2.0, -5.0, 2) - 0.13).abs() < 1e-15);
        // Tiny ηλ = 1e-12 after 1000 steps ≈ η²σ² t (1 − ηλ t) to high relative precision.
        let tiny = variance_after_steps(1.0, 1.0, 1e-12, 1000);
        assert!(
            (tiny - 1000.0 * (1.0 - 1e-12 * 999.0)).abs() < 1e-9,
            "{tiny}"
        );
    }

    /// The exact stay probability of the linear recursion e ← (I − ηH) e − η σ ξ on quadratics
    /// whose top two eigenvalues are resolved and whose bulk is not, simulated in the eigenbasis
    /// (exact: the noise is isotropic): the bound never exceeds it, while the mean-bulk estimate
    /// can, when the bulk is spread (half flat, half stiff: Jensen).
    #[test]
    fn the_stay_probability_bound_holds_against_a_simulated_exact_stay_probability() {
        let (eta, sigma, steps, replicates) = (0.05f64, 0.3f64, 150u64, 4000usize);
        let top = [30.0, 12.0];
        let spread_bulk: Vec<f64> = (0..40)
            .map(|i| if i % 2 == 0 { 0.0 } else { 20.0 })
            .collect();
        let even_bulk = vec![4.0; 40];
        let negative_bulk: Vec<f64> = (0..40).map(|i| -0.02 + 0.1 * i as f64).collect();
        for bulk in [spread_bulk, even_bulk, negative_bulk] {
            let spectrum: Vec<f64> = top.iter().chain(&bulk).copied().collect();
            let lambda_min = spectrum.iter().copied().fold(f64::INFINITY, f64::min);
            let trace: f64 = spectrum.iter().sum();
            let bound = StayProbabilityBound::new(eta, sigma, &top, lambda_min, spectrum.len())
                .expect("stable");
            let estimate = LinearizedProbe::new(eta, sigma, &top, trace, spectrum.len());
            let mut rng = ChaCha8Rng::seed_from_u64(41);
            let radii = [0.5, 1.0, 1.5, 1.75, 2.0, 2.5];
            let mut stayed = [0usize; 6];
            for _ in 0..replicates {
                let mut e = vec![0.0f64; spectrum.len()];
                let mut largest = 0.0f64;
                for _ in 0..steps {
                    for (slot, &lambda) in e.iter_mut().zip(&spectrum) {
                        let noise: f64 = rng.sample(StandardNormal);
                        *slot = (1.0 - eta * lambda) * *slot - eta * sigma * noise;
                    }
                    largest = largest.max(e.iter().map(|v| v * v).sum::<f64>().sqrt());
                }
                for (count, radius) in stayed.iter_mut().zip(radii) {
                    *count += usize::from(largest <= radius);
                }
            }
            let mut estimate_above = false;
            for (count, radius) in stayed.iter().zip(radii) {
                let exact = *count as f64 / replicates as f64;
                // Three binomial standard errors of slack for the simulation's own noise.
                let slack = 3.0 * (exact * (1.0 - exact) / replicates as f64).sqrt();
                let lower = bound.stay_probability(radius, steps);
                assert!(
                    lower <= exact + slack,
                    "r {radius}: bound {lower} vs exact {exact}"
                );
                estimate_above |= estimate.stay_probability(radius, steps) > exact + slack;
            }
            // Not vacuous: at the largest radius it promises something.
            let widest = bound.stay_probability(2.0, steps);
            assert!(widest > 0.9, "{widest}");
            if bulk[0] == 0.0 && bulk[1] == 20.0 {
                assert!(
                    estimate_above,
                    "the mean-bulk estimate overstates a spread bulk"
                );
            }
        }
        // Above 2/η the bound does not apply, and says so.
        assert!(StayProbabilityBound::new(eta, sigma, &[41.0], 0.0, 10).is_none());
    }

    /// The linear recursion simulated in f64 with a seeded generator: per direction, the
    /// variance across replicates after many steps matches v_i within sampling error.
    #[test]
    fn the_simulated_linear_recursion_has_the_predicted_variances() {
        let (eta, sigma) = (0.05, 0.7);
        let eigenvalues = [30.0, 10.0, 1.0, 0.0, -0.2];
        let (replicates, steps) = (4000usize, 120u64);
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let mut sums = [0.0f64; 5];
        for _ in 0..replicates {
            let mut e = [0.0f64; 5];
            for _ in 0..steps {
                for (slot, &lambda) in e.iter_mut().zip(&eigenvalues) {
                    let noise: f64 = rng.sample(StandardNormal);
                    *slot = (1.0 - eta * lambda) * *slot - eta * sigma * noise;
                }
            }
            for (sum, value) in sums.iter_mut().zip(e) {
                *sum += value * value;
            }
        }
        for (index, &lambda) in eigenvalues.iter().enumerate() {
            let measured = sums[index] / replicates as f64;
            let predicted = variance_after_steps(eta, sigma, lambda, steps);
            // The mean of R squared N(0, v) values has relative standard error sqrt(2/R) ≈ 2.2%.
            assert!(
                (measured / predicted - 1.0).abs() < 4.0 * (2.0 / replicates as f64).sqrt(),
                "λ {lambda}: measured {measured} vs predicted {predicted}"
            );
            if let Some(stationary) = stationary_variance(eta, sigma, lambda) {
                // ηλ ≥ 0.05 here: after 120 steps (1 − ηλ)^240 < 5e-6 of the limit remains.
                assert!((predicted / stationary - 1.0).abs() < 1e-5);
            }
        }
    }

    /// The probe's dynamics (f32 parameters, Gaussian gradient noise, its distance summary) on the
    /// quadratic loss ½ θᵀHθ with H = Q diag(λ) Qᵀ known exactly: two separated top eigenvalues
    /// and a bulk of six equal ones, which the trace resolves exactly. The measured variance along
    /// each eigenvector and the MSD after T steps match the prediction within sampling error, and
    /// the measured stay probabilities respect the prediction (with this spectrum the bulk is
    /// resolved exactly, so here it is a lower bound).
    #[test]
    fn the_probe_on_a_quadratic_loss_matches_the_prediction() {
        use crate::measure::probe::summarize;
        let eigenvalues = [40.0, 12.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0];
        let dimension = eigenvalues.len();
        // Q = I − 2uuᵀ/||u||², a Householder reflection: symmetric and orthogonal.
        let u: Vec<f64> = (1..=dimension).map(|i| i as f64).collect();
        let u_squared: f64 = u.iter().map(|v| v * v).sum();
        let q = |row: usize, column: usize| {
            f64::from(u8::from(row == column)) - 2.0 * u[row] * u[column] / u_squared
        };
        let hessian: Vec<f64> = (0..dimension * dimension)
            .map(|index| {
                let (row, column) = (index / dimension, index % dimension);
                (0..dimension)
                    .map(|k| q(row, k) * eigenvalues[k] * q(column, k))
                    .sum()
            })
            .collect();
        let (eta, sigma, steps, replicates) = (0.02f64, 1.0f64, 200u64, 2000usize);
        let prediction = LinearizedProbe::new(
            eta,
            sigma,
            &eigenvalues[..2],
            eigenvalues.iter().sum(),
            dimension,
        );
        assert!((prediction.bulk_eigenvalue - 3.0).abs() < 1e-12);

        let mut rng = ChaCha8Rng::seed_from_u64(29);
        let mut trajectories = Vec::with_capacity(replicates);
        let mut squared_along = vec![0.0f64; dimension];
        for _ in 0..replicates {
            let mut theta = vec![0.0f32; dimension];
            let mut distances = Vec::with_capacity(steps as usize);
            for _ in 0..steps {
                let gradient: Vec<f32> = (0..dimension)
                    .map(|row| {
                        let exact: f64 = (0..dimension)
                            .map(|column| {
                                hessian[row * dimension + column] * f64::from(theta[column])
                            })
                            .sum();
                        let noise: f32 = rng.sample(StandardNormal);
                        exact as f32 + sigma as f32 * noise
                    })
                    .collect();
                for (value, g) in theta.iter_mut().zip(&gradient) {
                    *value -= eta as f32 * g;
                }
                distances.push(
                    theta
                        .iter()
                        .map(|&v| f64::from(v).powi(2))
                        .sum::<f64>()
                        .sqrt(),
                );
            }
            for (k, slot) in squared_along.iter_mut().enumerate() {
                let along: f64 = (0..dimension)
                    .map(|row| q(row, k) * f64::from(theta[row]))
                    .sum();
                *slot += along * along;
            }
            trajectories.push(distances);
        }

        let predicted = prediction.variances_after(steps);
        let tolerance = 4.0 * (2.0 / replicates as f64).sqrt();
        for (k, squared) in squared_along.iter().enumerate() {
            let measured = squared / replicates as f64;
            let expected = predicted.top.get(k).copied().unwrap_or(predicted.bulk);
            assert!(
                (measured / expected - 1.0).abs() < tolerance,
                "direction {k}: measured {measured} vs predicted {expected}"
            );
        }
        let measured_msd = trajectories
            .iter()
            .map(|distances| distances[steps as usize - 1].powi(2))
            .sum::<f64>()
            / replicates as f64;
        let predicted_msd = prediction.mean_squared_distance(steps);
        // ||e_T||² sums 8 independent squares: its relative spread is below that of one.
        assert!(
            (measured_msd / predicted_msd - 1.0).abs() < tolerance,
            "MSD measured {measured_msd} vs predicted {predicted_msd}"
        );

        let rms = predicted_msd.sqrt();
        let radii = [0.8 * rms, 2.0 * rms, 2.5 * rms, 3.0 * rms];
        let summary = summarize(&trajectories, &radii);
        let standard_error = (0.25 / replicates as f64).sqrt();
        for measurement in &summary.radii {
            let bound = prediction.stay_probability(measurement.radius, steps);
            assert!(
                measurement.stay_probability >= bound - 3.0 * standard_error,
                "radius {}: measured stay {} below the predicted bound {bound}",
                measurement.radius,
                measurement.stay_probability
            );
        }
        // Inside the typical distance nobody stays and the bound says nothing; at three RMS
        // the bound is informative and nearly every replicate stays.
        assert_eq!(summary.radii[0].stay_probability, 0.0);
        assert_eq!(prediction.stay_probability(radii[0], steps), 0.0);
        assert!(prediction.stay_probability(radii[3], steps) > 0.5);
        assert!(summary.radii[3].stay_probability > 0.95);
    }

    #[test]
    fn the_laurent_massart_exponent_solves_its_quadratic() {
        // v = (1, 1, 2): a = 4, b = sqrt(6), c = 2. r² = 4 + 2 sqrt(6)·1 + 2·2·1 at x = 1.
        let variances = [1.0, 1.0, 2.0];
        let radius = (8.0 + 2.0 * 6.0f64.sqrt()).sqrt();
        assert!((laurent_massart_exponent(&variances, radius) - 1.0).abs() < 1e-12);
        // x = 4: r² = 4 + 4 sqrt(6) + 16.
        let radius = (20.0 + 4.0 * 6.0f64.sqrt()).sqrt();
        let x = laurent_massart_exponent(&variances, radius);
        assert!((x - 4.0).abs() < 1e-12);
        // T = 10: 10 e^{−4}.
        let bound = predicted_exit_probability(&variances, radius, 10);
        assert!((bound - 10.0 * (-4.0f64).exp()).abs() < 1e-14);
        assert_eq!(predicted_exit_probability(&variances, 1.0, 10), 1.0);
        assert_eq!(laurent_massart_exponent(&[0.0, 0.0], 1.0), f64::INFINITY);
        assert_eq!(predicted_exit_probability(&[0.0, 0.0], 1.0, 10), 0.0);
    }

    #[test]
    fn the_laurent_massart_bound_holds_for_a_simulated_gaussian() {
        // P(Σ v_i Z_i² ≥ r²) ≤ e^{−x}, checked by simulation at x = 3 (e^{−3} = 0.0498).
        let variances = [3.0, 1.0, 0.5, 0.5, 0.25];
        let a: f64 = variances.iter().sum();
        let b = variances.iter().map(|v: &f64| v * v).sum::<f64>().sqrt();
        let radius = (a + 2.0 * b * 3.0f64.sqrt() + 2.0 * 3.0 * 3.0).sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let draws = 20_000;
        let mut exceed = 0;
        for _ in 0..draws {
            let squared: f64 = variances
                .iter()
                .map(|v| v * rng.sample::<f64, _>(StandardNormal).powi(2))
                .sum();
            exceed += usize::from(squared >= radius * radius);
        }
        let frequency = exceed as f64 / draws as f64;
        assert!(frequency <= (-3.0f64).exp(), "{frequency}");
        assert!(frequency > 0.0);
    }
}
