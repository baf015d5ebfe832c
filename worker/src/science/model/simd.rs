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
