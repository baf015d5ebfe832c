//! Elementwise loops compiled for the widest vector instructions the CPU has.
//!
//! The crate is built for the x86-64 baseline, so that one binary runs on every node of a
//! cluster; a loop over f32 then handles 4 lanes at a time, and checking 20M parameters for
//! NaN took longer than some of a step's matrix products. `pulp` detects AVX2 or AVX-512 once and
//! runs the loop compiled for it. The numbers do not change with the width: Rust neither
//! reorders floating-point sums nor fuses a multiply and an add unless told to.

/// Runs `work`, inlined into a copy compiled for the widest instruction set this CPU supports.
/// Mark the closure `#[inline(always)]`: one with a loop inside is otherwise too large to be
/// inlined and runs on the baseline instructions.
#[inline(always)]
pub fn on_widest_simd<R>(work: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(work)
}

/// The sum of `term(value)` over `values`, in 16 interleaved partial sums so that the loop
/// vectorises: a single running sum is one long chain of dependent additions. Call it inside
/// [`on_widest_simd`].
#[inline(always)]
pub fn sum_in_lanes(values: &[f32], term: impl Fn(f32) -> f32) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let remainder = chunks.remainder();
    for chunk in chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane += term(value);
        }
    }
    for (lane, &value) in lanes.iter_mut().zip(remainder) {
        *lane += term(value);
    }
    lanes.iter().sum()
}

/// The largest |value|, or NaN where a value is NaN. Call it inside [`on_widest_simd`].
///
/// Compared as integers: with the sign bit cleared, a float's bits order as the magnitudes do,
/// and a NaN's bits lie above infinity's, so the maximum finds it where a floating-point maximum
/// would step over it.
#[inline(always)]
pub fn largest_magnitude(values: &[f32]) -> f32 {
    let bits = values
        .iter()
        .map(|value| value.to_bits() & 0x7fff_ffff)
        .fold(0, u32::max);
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_magnitude_finds_the_largest_value_and_any_infinity_or_nan() {
        let largest = |values: &[f32]| {
            on_widest_simd(
                #[inline(always)]
                || largest_magnitude(values),
            )
        };
        assert_eq!(largest(&[]), 0.0);
        for len in [1, 5, 16, 37] {
            let values: Vec<f32> = (0..len).map(|i| (i as f32 - 20.0) * 1e30).collect();
            let want = values.iter().fold(0.0f32, |m, value| m.max(value.abs()));
            assert_eq!(largest(&values), want, "{len} finite values");
            for at in 0..len {
                for bad in [f32::INFINITY, f32::NEG_INFINITY] {
                    let mut with_bad = values.clone();
                    with_bad[at] = bad;
                    assert_eq!(largest(&with_bad), f32::INFINITY, "{bad} at {at} of {len}");
                }
                for nan in [f32::NAN, -f32::NAN] {
                    let mut with_nan = values.clone();
                    // An infinity elsewhere must not hide the NaN.
                    with_nan[len - 1 - at] = f32::INFINITY;
                    with_nan[at] = nan;
                    assert!(largest(&with_nan).is_nan(), "NaN at {at} of {len}");
                }
            }
        }
    }
}
