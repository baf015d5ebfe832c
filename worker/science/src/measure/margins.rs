//! Classification margins and their percentile γ.

/// f(x)_y − max_{j≠y} f(x)_j, in f64; positive when the example is classified correctly.
pub fn margin(logits: &[f32], label: usize) -> f64 {
    let mut runner_up = f64::NEG_INFINITY;
    for (class, &logit) in logits.iter().enumerate() {
        if class != label {
            runner_up = runner_up.max(f64::from(logit));
        }
    }
    f64::from(logits[label]) - runner_up
}

/// The `percentile` (0–100) of `values` with linear interpolation between order statistics
/// (NumPy's default); NaN for an empty slice.
pub fn percentile(values: &[f64], percentile: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = percentile.clamp(0.0, 100.0) / 100.0 * (sorted.len() - 1) as f64;
    let below = rank.floor() as usize;
    let above = rank.ceil() as usize;
    sorted[below] + (rank - below as f64) * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_compare_the_label_with_the_best_other_class() {
        assert_eq!(margin(&[1.0, 3.0, 2.5], 1), 0.5);
        assert_eq!(margin(&[1.0, 3.0, 2.5], 0), -2.0);
        assert_eq!(margin(&[4.0, 4.0], 0), 0.0);
    }

    #[test]
    fn percentiles_interpolate_between_order_statistics() {
        let values = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(percentile(&values, 100.0), 5.0);
        assert_eq!(percentile(&values, 50.0), 3.0);
        // rank 0.1 × 4 = 0.4: 1 + 0.4 × (2 − 1).
        assert!((percentile(&values, 10.0) - 1.4).abs() < 1e-12);
        // rank 0.05 × 3 = 0.15 over sorted (−2, 0, 1, 7): −2 + 0.15 × 2.
        assert!((percentile(&[1.0, -2.0, 7.0, 0.0], 5.0) + 1.7).abs() < 1e-12);
        assert!(percentile(&[], 5.0).is_nan());
    }
}
