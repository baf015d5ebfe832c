//! Value conventions both stores share.

/// Non-finite numbers (a diverged run's loss, a bound with γ ≤ 0) are stored as NULL.
pub fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

/// The generalization-gap estimate sqrt(C / m) of a capacity C on m training examples.
pub fn gap_estimate(capacity: f64, train_size: u64) -> Option<f64> {
    if train_size == 0 {
        return None;
    }
    finite((capacity / train_size as f64).sqrt())
}

/// The Hessian's top eigenvalues as a JSON array (non-finite ones as null); None when absent.
pub fn eigenvalues_json(values: &[f64]) -> Option<String> {
    if values.is_empty() {
        return None;
    }
    let finite_or_null: Vec<Option<f64>> = values.iter().map(|value| finite(*value)).collect();
    serde_json::to_string(&finite_or_null).ok()
}

/// A fresh, unguessable lease token.
pub fn new_lease_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
