//! Capacity terms of published generalization bounds (science.md §4). Each returns a capacity
//! C such that the generalization gap is of order sqrt(C / m), m the number of training
//! examples. Margin-based capacities are infinite when the margin γ is not positive: the bound
//! says nothing when the chosen percentile of training examples is misclassified.

use crate::measure::flatness::Flatness;

/// VC dimension of a network with one hidden layer of `hidden_units` units (Harvey et al.), in
/// the form of the over-parametrization study's released code: P parameters, c classes, d input
/// dimensions. For deeper networks h is the total number of hidden units.
pub fn vc_dimension(parameters: f64, hidden_units: f64, classes: f64, input_dim: f64) -> f64 {
    let (h, c, d) = (hidden_units, classes, input_dim);
    let e = std::f64::consts::E;
    let log_term = (8.0 * e * (h + 2.0 * c) * (4.0 * e * (h + 2.0 * c)).log2()).log2();
    let layer_ratio = (2.0 * (d + 1.0) * h + (h + 1.0) * c) / ((d + 1.0) * h + (h + 1.0) * c);
    2.0 + parameters * log_term * layer_ratio
}

/// C = 8c·VC·ln(e·max(m/VC, 1)) + 8 ln(2/δ).
pub fn vc_capacity(vc_dimension: f64, classes: f64, train_size: f64, delta: f64) -> f64 {
    let e = std::f64::consts::E;
    8.0 * classes * vc_dimension * (e * (train_size / vc_dimension).max(1.0)).ln()
        + 8.0 * (2.0 / delta).ln()
}

/// Bartlett–Foster–Telgarsky spectral complexity
/// R_A = Π_i ||A_i||_op · (Σ_i ||A_i − M_i||_{2,1}^{2/3} / ||A_i||_op^{2/3})^{3/2},
/// given per layer the spectral norm and the (2,1) distance from the reference M_i.
pub fn spectral_complexity(spectral_norms: &[f64], reference_distances_two_one: &[f64]) -> f64 {
    assert_eq!(
        spectral_norms.len(),
        reference_distances_two_one.len(),
        "one spectral norm and one distance per layer"
    );
    let product: f64 = spectral_norms.iter().product();
    let sum: f64 = spectral_norms
        .iter()
        .zip(reference_distances_two_one)
        .map(|(spectral, distance)| (distance / spectral).powf(2.0 / 3.0))
        .sum();
    product * sum.powf(1.5)
}

/// C = (R_A · sqrt(mean ||x||²) · ln W / γ)², W the widest layer (inputs included).
pub fn spectral_capacity(
    spectral_complexity: f64,
    mean_input_norm_squared: f64,
    max_width: f64,
    gamma: f64,
) -> f64 {
    if gamma.is_nan() || gamma <= 0.0 {
        return f64::INFINITY;
    }
    (spectral_complexity * mean_input_norm_squared.sqrt() * max_width.ln() / gamma).powi(2)
}

/// Norms of one layer's weight matrix W (fan_out × fan_in; biases are left out of every bound)
/// and of its displacement W − W_0 from the initialisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNorms {
    pub fan_in: usize,
    pub fan_out: usize,
    /// ||W||_op.
    pub spectral: f64,
    /// ||W||_F.
    pub frobenius: f64,
    /// ||W||_{1,∞}: the largest row ℓ1 norm.
    pub one_infinity: f64,
    /// ||W − W_0||_F.
    pub distance_frobenius: f64,
    /// ||W − W_0||_{2,1}: the sum of row ℓ2 norms.
    pub distance_two_one: f64,
}

/// Statistics of the training sample that enter the bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleStatistics {
    /// m, the number of training examples.
    pub train_size: f64,
    /// c.
    pub classes: f64,
    /// d, the input dimension.
    pub input_dim: f64,
    /// mean_i ||x_i||₂².
    pub mean_input_norm_squared: f64,
    /// mean_i ||x_i||_∞².
    pub mean_input_max_abs_squared: f64,
    /// max_i ||x_i||₂, the B of bounds that assume ||x|| ≤ B.
    pub max_input_norm: f64,
}

fn margin_is_usable(gamma: f64) -> bool {
    gamma.is_finite() && gamma > 0.0
}

/// (R + 3 sqrt(ln(m/δ)))², the capacity of the 2-layer norm bounds of the over-parametrization
/// study's code given the margin-normalised complexity R.
pub fn margin_capacity(complexity: f64, train_size: f64, delta: f64) -> f64 {
    (complexity + 3.0 * (train_size / delta).ln().sqrt()).powi(2)
}

/// Frobenius bound of Neyshabur, Tomioka and Srebro (2015) for f = V σ(U x):
/// R = 8 sqrt(c) ||U||_F ||V||_F sqrt(mean ||x||²) / γ, C = (R + 3 sqrt(ln(m/δ)))².
pub fn frobenius_capacity(
    first: &LayerNorms,
    second: &LayerNorms,
    sample: &SampleStatistics,
    gamma: f64,
    delta: f64,
) -> f64 {
    if !margin_is_usable(gamma) {
        return f64::INFINITY;
    }
    let complexity = 8.0
        * sample.classes.sqrt()
        * first.frobenius
        * second.frobenius
        * sample.mean_input_norm_squared.sqrt()
        / gamma;
    margin_capacity(complexity, sample.train_size, delta)
}

/// ℓ1,∞ bound of Bartlett and Mendelson (2002) for f = V σ(U x):
/// R = 8c ||U||_{1,∞} ||V||_{1,∞} · 2 sqrt(ln d) · sqrt(mean ||x||_∞²) / γ,
/// C = (R + 3 sqrt(ln(m/δ)))²; ||·||_{1,∞} the largest row ℓ1 norm of the out × in matrix.
pub fn one_infinity_capacity(
    first: &LayerNorms,
    second: &LayerNorms,
    sample: &SampleStatistics,
    gamma: f64,
    delta: f64,
) -> f64 {
    if !margin_is_usable(gamma) {
        return f64::INFINITY;
    }
    let complexity = 8.0
        * sample.classes
        * first.one_infinity
        * second.one_infinity
        * 2.0
        * sample.input_dim.ln().sqrt()
        * sample.mean_input_max_abs_squared.sqrt()
        / gamma;
    margin_capacity(complexity, sample.train_size, delta)
}

/// The explicit 2-layer form of Bartlett, Foster and Telgarsky (2017) from the
/// over-parametrization study's code, with s_1 = ||U||_op, s_2 = ||V||_op (spectral norms of
/// the weights themselves) and d_1 = ||U − U_0||_{2,1}, d_2 = ||V − V_0||_{2,1}:
/// R = 144 ln(m) ln(2P) (sqrt(mean ||x||²) + 1/sqrt(m)) ((s_2 d_1)^{2/3} + (s_1 d_2)^{2/3})^{3/2} / γ,
/// C = (R + sqrt(4.5 ln(1/δ) + ln(2m/γ) + 2 ln(2 + sqrt(m mean ||x||²))
///          + 2 ln[(2 + 2||U − U_0||_F)(2 + 2||V − V_0||_F)(2 + 2 s_1)(2 + 2 s_2)]))²,
/// P the number of parameters.
pub fn spectral_two_layer_capacity(
    first: &LayerNorms,
    second: &LayerNorms,
    sample: &SampleStatistics,
    parameter_count: f64,
    gamma: f64,
    delta: f64,
) -> f64 {
    if !margin_is_usable(gamma) {
        return f64::INFINITY;
    }
    let m = sample.train_size;
    let (s1, s2) = (first.spectral, second.spectral);
    let (d1, d2) = (first.distance_two_one, second.distance_two_one);
    let complexity = 144.0
        * m.ln()
        * (2.0 * parameter_count).ln()
        * (sample.mean_input_norm_squared.sqrt() + 1.0 / m.sqrt())
        * ((s2 * d1).powf(2.0 / 3.0) + (s1 * d2).powf(2.0 / 3.0)).powf(1.5)
        / gamma;
    let confidence = 4.5 * (1.0 / delta).ln()
        + (2.0 * m / gamma).ln()
        + 2.0 * (2.0 + (m * sample.mean_input_norm_squared).sqrt()).ln()
        + 2.0
            * ((2.0 + 2.0 * first.distance_frobenius)
                * (2.0 + 2.0 * second.distance_frobenius)
                * (2.0 + 2.0 * s1)
                * (2.0 + 2.0 * s2))
                .ln();
    (complexity + confidence.sqrt()).powi(2)
}

/// The spectrally-normalised PAC-Bayes bound of Neyshabur, Bhojanapalli and Srebro (2018), the
/// Õ taken with constant 1: gap ≈ sqrt(C/m) with
/// C = (B² d² h ln(dh) Π_i ||W_i||_op² Σ_i ||W_i||_F²/||W_i||_op² + ln(dm/δ)) / γ².
/// Choices: d = the number of layers; h = the largest fan_out of any layer (the paper's "number
/// of output units in each layer"); B = max_i ||x_i||₂ (the theorem assumes ||x|| ≤ B).
pub fn spectral_frobenius_pac_bayes_capacity(
    layers: &[LayerNorms],
    sample: &SampleStatistics,
    gamma: f64,
    delta: f64,
) -> f64 {
    if !margin_is_usable(gamma) {
        return f64::INFINITY;
    }
    let depth = layers.len() as f64;
    let width = layers.iter().map(|layer| layer.fan_out).max().unwrap_or(0) as f64;
    let product: f64 = layers.iter().map(|layer| layer.spectral.powi(2)).product();
    let ratio_sum: f64 = layers
        .iter()
        .map(|layer| (layer.frobenius / layer.spectral).powi(2))
        .sum();
    let complexity = sample.max_input_norm.powi(2)
        * depth
        * depth
        * width
        * (depth * width).ln()
        * product
        * ratio_sum;
    (complexity + (depth * sample.train_size / delta).ln()) / (gamma * gamma)
}

/// The 2-layer bound of Neyshabur, Li, Bhojanapalli, LeCun and Srebro (2019) for f = V[Ux]_+:
/// R = 3 sqrt(2) (sqrt(2c) + 1)(||V||_F + 1)
/// (||U_0 X||_F/sqrt(m) + ||U − U_0||_F sqrt(mean ||x||²) + 1) / γ,
/// C = (R + 3 sqrt(5h + ln(max(1, γ sqrt(m))/δ)))², h = fan_out of U (the hidden units)
/// and ||U_0 X||_F the Frobenius norm of the initial first layer applied to the training inputs
/// (see `network_norms::initial_image_frobenius`).
pub fn neyshabur_2019_capacity(
    first: &LayerNorms,
    second: &LayerNorms,
    sample: &SampleStatistics,
    initial_image_frobenius: f64,
    gamma: f64,
    delta: f64,
) -> f64 {
    if !margin_is_usable(gamma) {
        return f64::INFINITY;
    }
    let m = sample.train_size;
    let complexity = 3.0
        * 2.0f64.sqrt()
        * ((2.0 * sample.classes).sqrt() + 1.0)
        * (second.frobenius + 1.0)
        * (initial_image_frobenius / m.sqrt()
            + first.distance_frobenius * sample.mean_input_norm_squared.sqrt()
            + 1.0)
        / gamma;
    let hidden = first.fan_out as f64;
    let confidence = 5.0 * hidden + ((gamma * m.sqrt()).max(1.0) / delta).ln();
    (complexity + 3.0 * confidence.sqrt()).powi(2)
}

/// Golowich, Rakhlin and Shamir (2018), Theorem 1, as the multiclass margin bound it enters:
/// the empirical Rademacher complexity of one class score is at most
/// R̂ = B (sqrt(2 ln 2 · d) + 1) Π_j ||W_j||_F / sqrt(m) (a score is the network with one row of
/// W_d, whose Frobenius norm is at most ||W_d||_F), and Mohri, Rostamizadeh and Talwalkar (2018,
/// *Foundations of Machine Learning*, 2nd ed., Theorem 9.2, Eq. 9.10 in its empirical form) give
/// for c classes, with probability 1 − δ,
/// L_0 ≤ L̂_γ + (4c/γ) R̂ + 3 sqrt(ln(2/δ)/(2m)).
/// Returned as C = (4c B (sqrt(2 ln 2 · d) + 1) Π_j ||W_j||_F / γ + 3 sqrt(ln(2/δ)/2))², so that
/// sqrt(C/m) is the whole gap term. d = the number of layers; B = sqrt(mean ||x||²), the
/// data-dependent form of their Theorem 1 (sqrt(Σ_i ||x_i||²)/m = sqrt(mean ||x||²)/sqrt(m)).
/// The factor 4c (science.md §4 leaves the multiclass factor open) is Mohri et al.'s; for c = 2
/// their binary bound (Theorem 5.8) has 2 in its place.
pub fn golowich_rakhlin_shamir_capacity(
    layers: &[LayerNorms],
    sample: &SampleStatistics,
    gamma: f64,
    delta: f64,
) -> f64 {
    if !margin_is_usable(gamma) {
        return f64::INFINITY;
    }
    let depth = layers.len() as f64;
    let product: f64 = layers.iter().map(|layer| layer.frobenius).product();
    let rademacher = sample.mean_input_norm_squared.sqrt()
        * ((2.0 * std::f64::consts::LN_2 * depth).sqrt() + 1.0)
        * product;
    let confidence = 3.0 * ((2.0 / delta).ln() / 2.0).sqrt();
    (4.0 * sample.classes * rademacher / gamma + confidence).powi(2)
}

/// Jiang et al. (2020)'s path-norm measure over the squared margin, path_norm / γ²
/// (`network_norms::path_norm`). A ranking measure, not a calibrated bound.
pub fn path_norm_capacity(path_norm: f64, gamma: f64) -> f64 {
    if !margin_is_usable(gamma) {
        return f64::INFINITY;
    }
    path_norm / (gamma * gamma)
}

/// What the stagnation probe saw of one layer, relative to the trained point Ŵ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeExcursion {
    /// ||Ŵ_ℓ||_op.
    pub minimum_spectral: f64,
    /// max_t ||W_{ℓ,t} − Ŵ_ℓ||_op over the probe.
    pub max_spectral_displacement: f64,
    /// ρ_ℓ = max_t ||W_{ℓ,t} − Ŵ_ℓ||_{2,1} over the probe.
    pub max_two_one_displacement: f64,
}

/// **Heuristic diagnostic, not a proven bound** ([Ours], science.md §4): the BFT form with the
/// reference at the minimum Θ̂ instead of the initialisation, whose reference depends on the
/// data. With s_ℓ = ||Ŵ_ℓ||_op + max_t ||W_{ℓ,t} − Ŵ_ℓ||_op and ρ_ℓ as in [`ProbeExcursion`]:
/// value = Π s_ℓ (Σ (ρ_ℓ/s_ℓ)^{2/3})^{3/2} sqrt(mean ||x||²) ln W/(γ sqrt(m)) + sqrt(ln(K̂/δ)/m),
/// K̂ = the number of distinct minima the same-basin test found across seeds and W the widest
/// layer (inputs included). The ln W is the one [`spectral_capacity`] carries (BFT's Õ), so the
/// two width slopes compare like for like (science.md §4). Returned as the capacity
/// C = (Π s_ℓ (Σ (ρ_ℓ/s_ℓ)^{2/3})^{3/2} sqrt(mean ||x||²) ln W/γ + sqrt(ln(K̂/δ)))², so that
/// sqrt(C/m) is exactly the value.
pub fn stagnation_localized_capacity(
    layers: &[ProbeExcursion],
    sample: &SampleStatistics,
    max_width: f64,
    distinct_minima: f64,
    gamma: f64,
    delta: f64,
) -> f64 {
    if !margin_is_usable(gamma) {
        return f64::INFINITY;
    }
    let spectral: Vec<f64> = layers
        .iter()
        .map(|layer| layer.minimum_spectral + layer.max_spectral_displacement)
        .collect();
    let displacement: Vec<f64> = layers
        .iter()
        .map(|layer| layer.max_two_one_displacement)
        .collect();
    let complexity = spectral_complexity(&spectral, &displacement)
        * sample.mean_input_norm_squared.sqrt()
        * max_width.ln()
        / gamma;
    (complexity + (distinct_minima / delta).ln().sqrt()).powi(2)
}

/// PAC-Bayes flatness (Jiang et al. 2020, Eq. 46's σ' with McAllester's bound as in their
/// Eq. 11) as a bound: the posterior Q = N(Θ̂, σ'² I) against the prior P = N(Θ_0, σ'² I) has
/// KL = ||Θ̂ − Θ_0||² / (2σ'²), and with probability 1 − δ, for every σ' of a grid of K values
/// fixed in advance (a union bound: δ/K each),
/// L(Q) ≤ L̂(Q) + sqrt((KL + ln(2mK/δ)) / (2(m − 1))).
/// As a gap estimate beside the others, sqrt(C/m) = max(0, L̂(Q) − L̂(Θ̂)) + that square root:
/// the trained network's training error plus it bounds the noisy network's population error.
/// L̂(Q) is estimated by the search's weight-noise draws. Infinite when σ' is not positive.
pub fn pac_bayes_flatness_capacity(
    distance_from_init_squared: f64,
    flatness: Flatness,
    grid_size: usize,
    train_size: f64,
    delta: f64,
) -> f64 {
    let sigma = flatness.sigma;
    if sigma.is_nan() {
        return f64::NAN;
    }
    if sigma <= 0.0 || train_size <= 1.0 {
        return f64::INFINITY;
    }
    let kl = distance_from_init_squared / (2.0 * sigma * sigma);
    let confidence = (2.0 * train_size * grid_size as f64 / delta).ln();
    let complexity = ((kl + confidence) / (2.0 * (train_size - 1.0))).sqrt();
    train_size * (flatness.error_increase.max(0.0) + complexity).powi(2)
}

/// sqrt(C / m), the order of the generalization gap a capacity stands for.
pub fn gap_from_capacity(capacity: f64, train_size: f64) -> f64 {
    (capacity / train_size).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vc_capacity_matches_a_hand_computation() {
        // P = 10, h = 2, c = 2, d = 1: h + 2c = 6; 4e·6 = 65.23876, log2 = 6.027658;
        // 8e·6·6.027658 = 786.47385, log2 = 9.619255; ratio (2·2·2 + 3·2)/(2·2 + 3·2) = 1.4;
        // VC = 2 + 10 · 9.619255 · 1.4 = 136.66957.
        let vc = vc_dimension(10.0, 2.0, 2.0, 1.0);
        assert!((vc - 136.669_569_93).abs() < 1e-6, "{vc}");
        // m = 1000: 16 · VC · ln(e · 7.316918) + 8 ln 200.
        let capacity = vc_capacity(vc, 2.0, 1000.0, 0.01);
        assert!((capacity - 6_581.072_413_45).abs() < 1e-5, "{capacity}");
        // m < VC: the logarithm is ln e = 1, leaving 16 · VC + 8 ln 200.
        let small = vc_capacity(vc, 2.0, 10.0, 0.01);
        assert!((small - 2_229.099_657_78).abs() < 1e-5, "{small}");
    }

    #[test]
    fn the_spectral_complexity_matches_a_hand_computation() {
        // s = (2, 4), distances (0.25, 32): ratios 1/8 and 8, to the 2/3: 1/4 and 4;
        // (17/4)^{3/2} = 17·sqrt(17)/8, times Π s = 8 gives 17·sqrt(17) = 70.092796.
        let complexity = spectral_complexity(&[2.0, 4.0], &[0.25, 32.0]);
        assert!((complexity - 70.092_795_64).abs() < 1e-6, "{complexity}");
        // (2 · sqrt(9) · ln 4 / 0.5)² = (12 ln 4)² = 276.740936.
        let capacity = spectral_capacity(2.0, 9.0, 4.0, 0.5);
        assert!((capacity - 276.740_936_02).abs() < 1e-6, "{capacity}");
        assert_eq!(spectral_capacity(2.0, 9.0, 4.0, 0.0), f64::INFINITY);
        assert_eq!(spectral_capacity(2.0, 9.0, 4.0, -1.0), f64::INFINITY);
    }
    fn layer(fan_in: usize, fan_out: usize) -> LayerNorms {
        LayerNorms {
            fan_in,
            fan_out,
            spectral: 1.0,
            frobenius: 1.0,
            one_infinity: 1.0,
            distance_frobenius: 0.0,
            distance_two_one: 0.0,
        }
    }

    /// m = 100, c = 4, d = 8, mean ||x||² = 16, mean ||x||_∞² = 9, max ||x|| = 3.
    const SAMPLE: SampleStatistics = SampleStatistics {
        train_size: 100.0,
        classes: 4.0,
        input_dim: 8.0,
        mean_input_norm_squared: 16.0,
        mean_input_max_abs_squared: 9.0,
        max_input_norm: 3.0,
    };

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-9 * want.abs()
    }

    #[test]
    fn the_two_layer_norm_capacities_match_hand_computation() {
        let first = LayerNorms {
            frobenius: 3.0,
            one_infinity: 2.0,
            distance_frobenius: 0.5,
            ..layer(8, 5)
        };
        let second = LayerNorms {
            frobenius: 0.5,
            one_infinity: 1.5,
            ..layer(5, 4)
        };
        let confidence = 3.0 * (100.0f64 / 0.01).ln().sqrt(); // 3 sqrt(ln 10⁴) = 9.104559
        // Frobenius: R = 8 · sqrt(4) · 3 · 0.5 · sqrt(16) / 2 = 48.
        let frobenius = frobenius_capacity(&first, &second, &SAMPLE, 2.0, 0.01);
        assert!(close(frobenius, (48.0 + confidence).powi(2)), "{frobenius}");
        assert!(close(frobenius, 3_260.931_089_873_63), "{frobenius}");
        // ℓ1,∞: R = 8 · 4 · 2 · 1.5 · 2 sqrt(ln 8) · sqrt(9) / 3 = 192 sqrt(ln 8) = 276.869162.
        let one_infinity = one_infinity_capacity(&first, &second, &SAMPLE, 3.0, 0.01);
        let r = 192.0 * 8.0f64.ln().sqrt();
        assert!(close(one_infinity, (r + confidence).powi(2)));
        assert!(close(one_infinity, 81_780.971_392_480_64), "{one_infinity}");
        // Neyshabur 2019 with ||V||_F = 1, ||U_0 X||_F = 20, ||U − U_0||_F = 0.5, h = 5, γ = 2:
        // R = 3 sqrt(2)(sqrt(8) + 1)(1 + 1)(20/10 + 0.5 · 4 + 1)/2 = 15 sqrt(2)(sqrt(8) + 1)
        // = 81.213203; 5h + ln(max(1, 2 · 10)/0.01) = 25 + ln 2000 = 32.600902.
        let second = LayerNorms {
            frobenius: 1.0,
            ..second
        };
        let ours = neyshabur_2019_capacity(&first, &second, &SAMPLE, 20.0, 2.0, 0.01);
        let r = 15.0 * 2.0f64.sqrt() * (8.0f64.sqrt() + 1.0);
        assert!(close(
            ours,
            (r + 3.0 * (25.0 + 2000.0f64.ln()).sqrt()).powi(2)
        ));
        assert!(close(ours, 9_671.220_445_124_529), "{ours}");
        for gamma in [0.0, -1.0, f64::NAN] {
            assert_eq!(
                frobenius_capacity(&first, &second, &SAMPLE, gamma, 0.01),
                f64::INFINITY
            );
            assert_eq!(
                neyshabur_2019_capacity(&first, &second, &SAMPLE, 20.0, gamma, 0.01),
                f64::INFINITY
            );
        }
    }

    #[test]
    fn the_explicit_two_layer_spectral_capacity_matches_hand_computation() {
        // s_1 = 1, s_2 = 8, d_1 = d_2 = 1, ||U − U_0||_F = 0.5, ||V − V_0||_F = 1.5, P = 50,
        // γ = 2: ((8 · 1)^{2/3} + (1 · 1)^{2/3})^{3/2} = 5^{3/2};
        // R = 144 ln 100 ln 100 (4 + 0.1) 5^{3/2} / 2 = 69 994.308669;
        // 4.5 ln 100 + ln 100 + 2 ln(2 + 40) + 2 ln(3 · 5 · 4 · 18) = 46.773208.
        let first = LayerNorms {
            spectral: 1.0,
            distance_two_one: 1.0,
            distance_frobenius: 0.5,
            ..layer(8, 5)
        };
        let second = LayerNorms {
            spectral: 8.0,
            distance_two_one: 1.0,
            distance_frobenius: 1.5,
            ..layer(5, 4)
        };
        let capacity = spectral_two_layer_capacity(&first, &second, &SAMPLE, 50.0, 2.0, 0.01);
        let ln100 = 100.0f64.ln();
        let r = 144.0 * ln100 * ln100 * 4.1 * 5.0f64.powf(1.5) / 2.0;
        let confidence =
            4.5 * ln100 + ln100 + 2.0 * 42.0f64.ln() + 2.0 * (3.0f64 * 5.0 * 4.0 * 18.0).ln();
        assert!(close(capacity, (r + confidence.sqrt()).powi(2)));
        assert!(close(capacity, 4_900_160_688.107_617), "{capacity}");
    }

    #[test]
    fn the_depth_general_capacities_match_hand_computation() {
        let layers = [
            LayerNorms {
                spectral: 2.0,
                frobenius: 4.0,
                ..layer(8, 5)
            },
            layer(5, 3),
        ];
        // NBS: B = 3, d = 2, h = 5: 9 · 4 · 5 · ln 10 · (4 · 1) · (4²/2² + 1) = 3600 ln 10
        // = 8289.306335; C = (8289.306335 + ln(2 · 100/0.01)) / 0.5² = 33 196.839289.
        let nbs = spectral_frobenius_pac_bayes_capacity(&layers, &SAMPLE, 0.5, 0.01);
        assert!(close(
            nbs,
            (3600.0 * 10.0f64.ln() + 20_000.0f64.ln()) / 0.25
        ));
        assert!(close(nbs, 33_196.839_289_324_4), "{nbs}");
        // GRS: sqrt(16)(sqrt(2 ln 2 · 2) + 1) · 4 · 1 / 2 = 8 (2 sqrt(ln 2) + 1), times 4c = 16,
        // plus 3 sqrt(ln(2/0.01)/2); squared.
        let grs = golowich_rakhlin_shamir_capacity(&layers, &SAMPLE, 2.0, 0.01);
        let grs_value =
            128.0 * (2.0 * 2.0f64.ln().sqrt() + 1.0) + 3.0 * (200.0f64.ln() / 2.0).sqrt();
        assert!(close(grs, grs_value.powi(2)));
        assert!(close(grs, 119_727.661_417_148_5), "{grs}");
        assert_eq!(path_norm_capacity(12.0, 2.0), 3.0);
        assert_eq!(path_norm_capacity(12.0, 0.0), f64::INFINITY);
        assert!(close(gap_from_capacity(400.0, 100.0), 2.0));
    }

    #[test]
    fn the_pac_bayes_flatness_capacity_matches_hand_computation() {
        let flatness = |sigma: f64, error_increase: f64| Flatness {
            sigma,
            error_increase,
        };
        // ||Θ̂ − Θ_0||² = 8, σ' = 0.5: KL = 8 / 0.5 = 16. m = 101, δ = 0.01, K = 1:
        // ln(20200) = 9.913438; C = 101 · 25.913438 / 200 = 13.086286.
        let capacity = pac_bayes_flatness_capacity(8.0, flatness(0.5, 0.0), 1, 101.0, 0.01);
        assert!((capacity - 13.086_286).abs() < 1e-5, "{capacity}");
        // K = 240 adds ln 240 = 5.480639; an error increase of 0.05 adds to the root:
        // sqrt(31.394077/200) = 0.396195, + 0.05 = 0.446195, squared × 101 = 20.108077.
        let capacity = pac_bayes_flatness_capacity(8.0, flatness(0.5, 0.05), 240, 101.0, 0.01);
        assert!((capacity - 20.108_077).abs() < 1e-5, "{capacity}");
        // A negative increase (noise helped) loosens nothing.
        assert_eq!(
            pac_bayes_flatness_capacity(8.0, flatness(0.5, -0.1), 1, 101.0, 0.01),
            pac_bayes_flatness_capacity(8.0, flatness(0.5, 0.0), 1, 101.0, 0.01)
        );
        assert_eq!(
            pac_bayes_flatness_capacity(8.0, flatness(0.0, 0.0), 1, 101.0, 0.01),
            f64::INFINITY
        );
        assert!(pac_bayes_flatness_capacity(8.0, flatness(f64::NAN, 0.0), 1, 101.0, 0.01).is_nan());
    }

    #[test]
    fn the_stagnation_localized_capacity_matches_hand_computation() {
        // s = (1.5 + 0.5, 3.5 + 0.5) = (2, 4), ρ = (0.25, 32): spectral complexity 17 sqrt(17)
        // (see above); × sqrt(16) ln 4/2 = 34 sqrt(17) ln 4 (W = 4); K̂ = 3: + sqrt(ln 300).
        let layers = [
            ProbeExcursion {
                minimum_spectral: 1.5,
                max_spectral_displacement: 0.5,
                max_two_one_displacement: 0.25,
            },
            ProbeExcursion {
                minimum_spectral: 3.5,
                max_spectral_displacement: 0.5,
                max_two_one_displacement: 32.0,
            },
        ];
        let capacity = stagnation_localized_capacity(&layers, &SAMPLE, 4.0, 3.0, 2.0, 0.01);
        let value = 34.0 * 17.0f64.sqrt() * 4.0f64.ln() / 10.0 + (300.0f64.ln() / 100.0).sqrt();
        assert!(close(gap_from_capacity(capacity, 100.0), value));
        assert!(close(capacity, 38_701.415_734_372_51), "{capacity}");
    }
}
