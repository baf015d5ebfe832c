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
