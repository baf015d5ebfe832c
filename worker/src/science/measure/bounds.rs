//! Capacity terms of published generalization bounds (science.md §4). Each returns a capacity
//! C such that the generalization gap is of order sqrt(C / m), m the number of training
//! examples. Margin-based capacities are infinite when the margin γ is not positive: the bound
//! says nothing when the chosen percentile of training examples is misclassified.

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
}
