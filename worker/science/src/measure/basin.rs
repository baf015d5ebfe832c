//! Whether the probe left Θ̂'s basin (science.md §3.10): noise-free gradient descent from the
//! probe's end point either comes back near Θ̂ or settles elsewhere, and the loss along the
//! straight segment from Θ̂ to the end point shows whether a barrier separates them.

/// Points of the segment at which the barrier is evaluated, ends included.
pub const BARRIER_POINTS: usize = 11;

/// max over α ∈ [0, 1] (on `points` evenly spaced values) of L((1−α)·a + α·b), minus
/// max(L(a), L(b)): 0 when the loss never rises above the higher end, positive across a barrier.
pub fn linear_barrier(
    mut loss_at: impl FnMut(&[f32]) -> f64,
    a: &[f32],
    b: &[f32],
    points: usize,
) -> f64 {
    assert!(points >= 2, "a segment needs both ends");
    let ends = loss_at(a).max(loss_at(b));
    let mut highest = ends;
    let mut point = vec![0.0f32; a.len()];
    for index in 1..points - 1 {
        let alpha = index as f64 / (points - 1) as f64;
        for ((slot, &x), &y) in point.iter_mut().zip(a).zip(b) {
            *slot = ((1.0 - alpha) * f64::from(x) + alpha * f64::from(y)) as f32;
        }
        highest = highest.max(loss_at(&point));
    }
    highest - ends
}

/// Runs `steps` of Θ ← Θ − η ∇L(Θ) with `gradient_at` writing ∇L(Θ); false if Θ stops being
/// finite.
pub fn gradient_descent(
    mut gradient_at: impl FnMut(&[f32], &mut [f32]),
    parameters: &mut [f32],
    learning_rate: f32,
    steps: u32,
) -> bool {
    let mut gradient = vec![0.0f32; parameters.len()];
    for _ in 0..steps {
        gradient_at(parameters, &mut gradient);
        for (parameter, &slope) in parameters.iter_mut().zip(&gradient) {
            *parameter -= learning_rate * slope;
        }
        if !parameters.iter().all(|value| value.is_finite()) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The double well (x² − 1)² + y²: minima at (±1, 0), a barrier of height 1 at the origin.
    fn double_well(point: &[f32]) -> f64 {
        let (x, y) = (f64::from(point[0]), f64::from(point[1]));
        (x * x - 1.0).powi(2) + y * y
    }

    #[test]
    fn the_barrier_between_the_wells_is_its_height() {
        let barrier = linear_barrier(double_well, &[-1.0, 0.0], &[1.0, 0.0], BARRIER_POINTS);
        assert!((barrier - 1.0).abs() < 1e-12, "{barrier}");
        // Inside one well the loss only rises towards the far end: no barrier.
        let inside = linear_barrier(double_well, &[1.0, 0.0], &[1.3, 0.2], BARRIER_POINTS);
        assert_eq!(inside, 0.0);
    }

    #[test]
    fn descent_returns_to_the_well_it_started_in() {
        let gradient = |point: &[f32], out: &mut [f32]| {
            let (x, y) = (point[0], point[1]);
            out[0] = 4.0 * x * (x * x - 1.0);
            out[1] = 2.0 * y;
        };
        let mut right = [0.2f32, 0.5];
        assert!(gradient_descent(gradient, &mut right, 0.05, 500));
        assert!(
            (right[0] - 1.0).abs() < 1e-4 && right[1].abs() < 1e-4,
            "{right:?}"
        );
        let mut left = [-0.2f32, 0.5];
        assert!(gradient_descent(gradient, &mut left, 0.05, 500));
        assert!((left[0] + 1.0).abs() < 1e-4, "{left:?}");
        let mut exploding = [10.0f32, 0.0];
        assert!(!gradient_descent(gradient, &mut exploding, 1.0, 50));
    }
}
