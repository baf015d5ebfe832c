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

/// `sums[row]` = [`sum_in_lanes`] of row `row` of `matrix` (rows of `cols` values), bit for bit.
///
/// A row's 16 lanes are added in one chain of dependent scalar additions, which took about a
/// tenth of a training step at width 4096 for the first layer's bias gradient. With AVX-512,
/// sixteen rows' lanes are transposed in registers, so that each chain runs lane-parallel, one
/// row per lane, in the same order.
pub fn row_sums_in_lanes(matrix: &[f32], cols: usize, sums: &mut [f32]) {
    assert!(matrix.len() >= sums.len() * cols);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V4::try_new() {
        done = simd.vectorize(
            #[inline(always)]
            || row_sums_in_blocks(simd, matrix, cols, sums),
        );
    }
    on_widest_simd(
        #[inline(always)]
        || {
            let rows = matrix.chunks_exact(cols.max(1)).skip(done);
            for (sum, row) in sums[done..].iter_mut().zip(rows) {
                *sum = sum_in_lanes(row, |value| value);
            }
        },
    )
}

/// Rows summed together by [`row_sums_in_blocks`]: one per lane.
#[cfg(target_arch = "x86_64")]
const ROW_BLOCK: usize = 16;

/// [`row_sums_in_lanes`] for whole blocks of [`ROW_BLOCK`] rows; returns the rows done.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn row_sums_in_blocks(simd: pulp::x86::V4, matrix: &[f32], cols: usize, sums: &mut [f32]) -> usize {
    use pulp::{Simd, f32x16};
    const LANES: usize = 16;
    let blocks = if cols == 0 { 0 } else { sums.len() / ROW_BLOCK };
    let zero = simd.splat_f32s(0.0);
    let rows = matrix[..blocks * ROW_BLOCK * cols].chunks_exact(ROW_BLOCK * cols);
    for (rows, sums) in rows.zip(sums.chunks_exact_mut(ROW_BLOCK)) {
        let mut lanes = [zero; ROW_BLOCK];
        for (lanes, row) in lanes.iter_mut().zip(rows.chunks_exact(cols)) {
            // As in `sum_in_lanes`: lanes start at +0.0, the remainder goes to the first lanes.
            // Adding a padded +0.0 to the others is exact, as no lane can hold −0.0.
            let chunks = row.chunks_exact(LANES);
            let remainder = chunks.remainder();
            for chunk in chunks {
                let values: f32x16 = bytemuck::pod_read_unaligned(bytemuck::cast_slice(chunk));
                *lanes = simd.add_f32s(*lanes, values);
            }
            if !remainder.is_empty() {
                *lanes = simd.add_f32s(*lanes, simd.partial_load_f32s(remainder));
            }
        }
        let columns = transposed(simd, lanes);
        // `Iterator::sum` adds lane 0 to its start, ±0.0, which leaves it as it is: no lane
        // holds −0.0.
        let mut total = columns[0];
        for &column in &columns[1..] {
            total = simd.add_f32s(total, column);
        }
        sums.copy_from_slice(bytemuck::cast_slice(std::slice::from_ref(&total)));
    }
    blocks * ROW_BLOCK
}

/// The 16 × 16 matrix with `rows` as its rows, transposed: at each of four steps, within every
/// 2b × 2b block the upper-right and the lower-left b × b blocks swap places (b = 8, 4, 2, 1).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transposed(simd: pulp::x86::V4, mut rows: [pulp::f32x16; 16]) -> [pulp::f32x16; 16] {
    use core::arch::x86_64::__m512i;
    use pulp::cast;
    let f = simd.avx512f;
    for (step, size) in [8, 4, 2, 1].into_iter().enumerate() {
        let (upper, lower): (__m512i, __m512i) = (cast!(SWAPS[step][0]), cast!(SWAPS[step][1]));
        for group in (0..16).step_by(2 * size) {
            for first in group..group + size {
                let (a, b) = (cast!(rows[first]), cast!(rows[first + size]));
                rows[first] = cast!(f._mm512_permutex2var_ps(a, upper, b));
                rows[first + size] = cast!(f._mm512_permutex2var_ps(a, lower, b));
            }
        }
    }
    rows
}

/// For each step of [`transposed`] (b = 8, 4, 2, 1), the lanes the upper and the lower row of a
/// pair take from the two (16 + l: the lower row's lane l): the upper row keeps its lane l in the
/// left half of each group of 2b lanes and takes the lower row's lane l − b in the right half; the
/// lower row takes the upper row's lane l + b in the left half and keeps its own in the right.
#[cfg(target_arch = "x86_64")]
const SWAPS: [[[u32; 16]; 2]; 4] = {
    let mut swaps = [[[0; 16]; 2]; 4];
    let mut step = 0;
    while step < 4 {
        let size = 8 >> step;
        let mut lane = 0;
        while lane < 16 {
            let left = (lane / size) % 2 == 0;
            swaps[step][0][lane] = if left { lane } else { 16 + lane - size } as u32;
            swaps[step][1][lane] = if left { lane + size } else { 16 + lane } as u32;
            lane += 1;
        }
        step += 1;
    }
    swaps
};

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
    fn row_sums_match_sums_in_f64() {
        for (rows, cols) in [(3, 128), (5, 37), (2, 16), (4, 1)] {
            let matrix: Vec<f32> = (0..rows * cols).map(|i| (i as f32 * 0.37).sin()).collect();
            let mut sums = vec![f32::NAN; rows];
            row_sums_in_lanes(&matrix, cols, &mut sums);
            for (row, sum) in sums.iter().enumerate() {
                let exact: f64 = matrix[row * cols..(row + 1) * cols]
                    .iter()
                    .map(|&v| f64::from(v))
                    .sum();
                assert!((f64::from(*sum) - exact).abs() < 1e-5, "{rows}×{cols}");
            }
        }
    }

    #[test]
    fn row_sums_are_each_rows_sum_in_lanes_bit_for_bit() {
        for cols in [1, 15, 16, 17, 32, 45, 64] {
            for rows in [0, 5, 16, 37, 100] {
                let mut matrix: Vec<f32> = (0..rows * cols)
                    .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 1.37e-3)
                    .collect();
                // Zeros of both signs, an infinity and a NaN among them.
                for (at, special) in [(3, -0.0), (4, 0.0), (40, f32::INFINITY), (77, f32::NAN)] {
                    if let Some(value) = matrix.get_mut(at * cols / 2) {
                        *value = special;
                    }
                }
                let mut sums = vec![f32::NAN; rows];
                row_sums_in_lanes(&matrix, cols, &mut sums);
                for (row, &sum) in sums.iter().enumerate() {
                    let values = &matrix[row * cols..(row + 1) * cols];
                    let want = on_widest_simd(
                        #[inline(always)]
                        || sum_in_lanes(values, |value| value),
                    );
                    assert_eq!(sum.to_bits(), want.to_bits(), "row {row} of {rows}×{cols}");
                }
            }
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
