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

/// Lanes of [`LaneSums`]: one AVX-512 vector of f64, independent running sums the compiler keeps
/// in vector registers.
pub const F64_LANES: usize = 8;

/// A sum of f64 products kept in [`F64_LANES`] running sums, coordinate i in lane i mod
/// [`F64_LANES`], and apart from them the last len mod [`F64_LANES`] coordinates of a slice: added
/// into the lanes, those would be a masked store that the next full load of the lanes waits on.
/// Call its methods inside [`on_widest_simd`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LaneSums {
    lanes: [f64; F64_LANES],
    tail: f64,
}

impl LaneSums {
    /// Running sums already summed elsewhere lane by lane, with no tail.
    #[inline(always)]
    pub fn from_lanes(lanes: [f64; F64_LANES]) -> Self {
        Self { lanes, tail: 0.0 }
    }

    /// Adds Σ aᵢ·convert(bᵢ).
    #[inline(always)]
    pub fn add<T: Copy>(&mut self, a: &[f64], b: &[T], convert: impl Fn(T) -> f64) {
        let (a_chunks, b_chunks) = (a.chunks_exact(F64_LANES), b.chunks_exact(F64_LANES));
        self.tail += a_chunks
            .remainder()
            .iter()
            .zip(b_chunks.remainder())
            .map(|(x, &y)| x * convert(y))
            .sum::<f64>();
        for (x, y) in a_chunks.zip(b_chunks) {
            for lane in 0..F64_LANES {
                self.lanes[lane] += x[lane] * convert(y[lane]);
            }
        }
    }

    #[inline(always)]
    pub fn total(&self) -> f64 {
        self.lanes.iter().sum::<f64>() + self.tail
    }
}

/// Σ aᵢbᵢ in [`F64_LANES`] running sums, added at the end. A single running sum waits on one
/// addition per coordinate (the probe's projections ran at that latency); the order of the
/// additions, and so the last bits, differ from it. Call it inside [`on_widest_simd`].
#[inline(always)]
pub fn dot_in_lanes(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = LaneSums::default();
    lanes.add(a, b, |b| b);
    lanes.total()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_f64_lane_dot_agrees_with_a_sequential_sum() {
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
                (dot_in_lanes(&a, &b) - sequential).abs() <= 1e-14 * scale,
                "{length}"
            );
        }
    }

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
