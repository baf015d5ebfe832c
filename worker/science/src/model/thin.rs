//! The matrix products of a layer with a thin side, where `gemm` is slow: a layer with few inputs
//! (the default sweep's first layer reads 20) or few outputs (its last layer has 4 classes).
//! `gemm` packs both operands and runs register blocks made for long inner dimensions; here the
//! inner dimension is 20 or 4, and at width 4096 its microkernels, its packing and the transpose
//! the backward pass needed after it took three quarters of a training step.
//!
//! Activations and errors are held unit by unit (units × batch), as in `mlp.rs`. The kernels
//! forming a layer's output or its error walk the units with one vector of examples in registers
//! (16 lanes with AVX-512, 8 with AVX2, through pulp's `Simd`), so a layer's output is written once,
//! already activated, and the error sent back through a narrow layer arrives in the layout the next
//! product reads, with the activation's derivative applied. The first layer's weight gradient runs
//! along each unit's row of inputs instead. The last layer's weight gradient sums along the
//! examples, in vectors whose lanes are then added in an order fixed for 16 lanes.
//!
//! Every output value is formed by the same sequence of fused multiply-adds (`mul_add`, exact on
//! every machine) and additions whatever the band or the vector width, so the numbers depend
//! neither on the thread count nor on the CPU.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use pulp::{Arch, Simd, WithSimd};
use vocabulary::Activation;

use crate::model::matmul::Combine;
use crate::model::simd::{largest_magnitude, on_widest_simd};
use crate::model::team::share_out_chunks;

/// A layer reading at most this many inputs goes through [`forward_from_few_inputs`] and
/// [`weight_gradient_of_few_inputs`].
pub const FEW_INPUTS: usize = 32;
/// A layer with at most this many outputs goes through [`forward_to_few_outputs`] and
/// [`send_back_through_few_outputs`].
pub const FEW_OUTPUTS: usize = 16;

/// The widest vector any instruction set here has, in f32 lanes (AVX-512).
const MAX_LANES: usize = 16;
/// Units of a layer with few inputs formed together, sharing each load of the inputs.
const UNIT_BLOCK: usize = 8;
/// Vectors of examples the kernels take at a time, sharing each broadcast of a weight.
const MAX_VECTORS: usize = 2;
/// Below this many multiply-adds a product runs on the calling thread (as in `matmul.rs`).
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 23;
/// Bands of units are a multiple of this long.
const MIN_BAND: usize = 64;

/// Calls `$body` with the const `$outputs` equal to `$count` (1 to [`FEW_OUTPUTS`]), so that a
/// kernel's sums over the outputs sit in registers.
macro_rules! with_outputs {
    ($count:expr, |$outputs:ident| $body:expr) => {
        match $count {
            1 => {
                const $outputs: usize = 1;
                $body
            }
            2 => {
                const $outputs: usize = 2;
                $body
            }
            3 => {
                const $outputs: usize = 3;
                $body
            }
            4 => {
                const $outputs: usize = 4;
                $body
            }
            5 => {
                const $outputs: usize = 5;
                $body
            }
            6 => {
                const $outputs: usize = 6;
                $body
            }
            7 => {
                const $outputs: usize = 7;
                $body
            }
            8 => {
                const $outputs: usize = 8;
                $body
            }
            9 => {
                const $outputs: usize = 9;
                $body
            }
            10 => {
                const $outputs: usize = 10;
                $body
            }
            11 => {
                const $outputs: usize = 11;
                $body
            }
            12 => {
                const $outputs: usize = 12;
                $body
            }
            13 => {
                const $outputs: usize = 13;
                $body
            }
            14 => {
                const $outputs: usize = 14;
                $body
            }
            15 => {
                const $outputs: usize = 15;
                $body
            }
            16 => {
                const $outputs: usize = 16;
                $body
            }
            other => unreachable!("{other} outputs is not few"),
        }
    };
}

/// `output` (fan_out × batch) = σ(W X + b) for a layer with at most [`FEW_INPUTS`] inputs:
/// `weights` fan_out × fan_in row-major, `inputs` batch × fan_in row-major (examples as they come
/// from the data set), `bias` fan_out values or none. σ is applied when `activation` is given.
/// Runs on up to `threads` threads. Returns the output's [`largest_magnitude`], taken as it is
/// written, so that a step's bound on its change needs no pass of its own.
#[allow(clippy::too_many_arguments)]
pub fn forward_from_few_inputs(
    weights: &[f32],
    bias: Option<&[f32]>,
    inputs: &[f32],
    fan_in: usize,
    batch: usize,
    activation: Option<Activation>,
    output: &mut [f32],
    threads: usize,
) -> f32 {
    assert!(
        (1..=FEW_INPUTS).contains(&fan_in),
        "{fan_in} inputs is not few"
    );
    let fan_out = weights.len() / fan_in;
    assert!(weights.len() == fan_out * fan_in && inputs.len() >= batch * fan_in);
    assert!(output.len() >= fan_out * batch && bias.is_none_or(|bias| bias.len() == fan_out));
    let largest = AtomicU32::new(0);
    in_unit_bands(
        &mut output[..fan_out * batch],
        batch,
        fan_in,
        threads,
        &|units, band| {
            let mut band_largest = Arch::new().dispatch(FewInputs {
                weights,
                bias,
                inputs,
                fan_in,
                batch,
                relu: activation == Some(Activation::Relu),
                units,
                band,
            });
            if activation == Some(Activation::Tanh) {
                for value in band.iter_mut() {
                    *value = value.tanh();
                }
                band_largest = on_widest_simd(
                    #[inline(always)]
                    || largest_magnitude(band),
                );
            }
            largest.fetch_max(band_largest.to_bits(), Ordering::Relaxed);
        },
    );
    f32::from_bits(largest.into_inner())
}

/// [`forward_from_few_inputs`] for the units `units`, written to `band` (their rows of the output).
struct FewInputs<'a> {
    weights: &'a [f32],
    bias: Option<&'a [f32]>,
    inputs: &'a [f32],
    fan_in: usize,
    batch: usize,
    relu: bool,
    units: Range<usize>,
    band: &'a mut [f32],
}

impl WithSimd for FewInputs<'_> {
    /// The largest magnitude written.
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let Self {
            weights,
            bias,
            inputs,
            fan_in,
            batch,
            relu,
            units,
            band,
        } = self;
        let lanes = lanes::<S>();
        let layer = (simd, weights, bias, inputs, fan_in, relu);
        let mut largest = simd.splat_u32s(0);
        let mut start = 0;
        // Two vectors of examples at a time where there are two: each weight is then broadcast
        // once for both, and the units' sums form twice as many chains of multiply-adds in
        // flight.
        while batch - start > lanes {
            let second = lanes.min(batch - start - lanes);
            let place = Place {
                band: &mut *band,
                first_unit: units.start,
                batch,
                starts: [start, start + lanes],
                examples: [lanes, second],
            };
            largest = outputs_of_units(layer, units.clone(), place, largest);
            start += lanes + second;
        }
        if start < batch {
            let place = Place {
                band: &mut *band,
                first_unit: units.start,
                batch,
                starts: [start],
                examples: [batch - start],
            };
            largest = outputs_of_units(layer, units.clone(), place, largest);
        }
        largest_of(largest)
    }
}

/// [`FewInputs`] for the `VECTORS` (at most [`MAX_VECTORS`]) vectors of examples of `place`: the
/// layer as (its SIMD, its weights, its biases, its inputs, its fan-in, whether σ is ReLU).
#[allow(clippy::type_complexity)]
#[inline(always)]
fn outputs_of_units<S: Simd, const VECTORS: usize>(
    (simd, weights, bias, inputs, fan_in, relu): (S, &[f32], Option<&[f32]>, &[f32], usize, bool),
    units: Range<usize>,
    mut place: Place<'_, VECTORS>,
    mut largest: S::u32s,
) -> S::u32s {
    let lanes = lanes::<S>();
    let zero = simd.splat_f32s(0.0);
    // The inputs of each vector of examples, feature by feature.
    const { assert!(VECTORS <= MAX_VECTORS) };
    let mut by_feature = [0.0f32; FEW_INPUTS * MAX_LANES * MAX_VECTORS];
    for (vector, (&start, &examples)) in place.starts.iter().zip(&place.examples).enumerate() {
        let rows = inputs[start * fan_in..(start + examples) * fan_in].chunks_exact(fan_in);
        for (example, row) in rows.enumerate() {
            for (feature, &value) in row.iter().enumerate() {
                by_feature[(feature * VECTORS + vector) * lanes + example] = value;
            }
        }
    }
    // Loops rather than `array::from_fn` here and below: its closures are not always inlined
    // into the vector code.
    let mut features = [[zero; VECTORS]; FEW_INPUTS];
    for (feature, values) in features[..fan_in].iter_mut().enumerate() {
        for (vector, values) in values.iter_mut().enumerate() {
            let at = (feature * VECTORS + vector) * lanes;
            *values = load(simd, &by_feature[at..at + lanes]);
        }
    }
    let features = &features[..fan_in];
    let mut first = units.start;
    while first + UNIT_BLOCK <= units.end {
        let block = (first, UNIT_BLOCK);
        largest = unit_block(
            simd, features, weights, bias, block, relu, &mut place, largest,
        );
        first += UNIT_BLOCK;
    }
    for unit in first..units.end {
        let block = (unit, 1);
        largest = unit_block(
            simd, features, weights, bias, block, relu, &mut place, largest,
        );
    }
    largest
}

/// The weight gradient G = Δ Xᵀ of a layer with at most [`FEW_INPUTS`] inputs, combined into
/// `target` (fan_out × fan_in row-major) as `combine` says: `delta` fan_out × batch, `inputs`
/// batch × fan_in row-major. Each G_{u,k} = Σ_b Δ_{u,b} X_{b,k} is summed over the batch in order.
/// Runs on up to `threads` threads.
pub fn weight_gradient_of_few_inputs(
    target: &mut [f32],
    combine: Combine,
    delta: &[f32],
    inputs: &[f32],
    fan_in: usize,
    batch: usize,
    threads: usize,
) {
    assert!(
        (1..=FEW_INPUTS).contains(&fan_in),
        "{fan_in} inputs is not few"
    );
    let fan_out = delta.len() / batch.max(1);
    assert!(delta.len() == fan_out * batch && inputs.len() >= batch * fan_in);
    assert!(target.len() == fan_out * fan_in);
    in_unit_bands(target, fan_in, batch, threads, &|units, band| {
        Arch::new().dispatch(GradientOfFewInputs {
            combine,
            delta: &delta[units.start * batch..units.end * batch],
            inputs: &inputs[..batch * fan_in],
            fan_in,
            batch,
            band,
        })
    });
}

/// [`weight_gradient_of_few_inputs`] for a band of units: their rows of Δ and of the target.
struct GradientOfFewInputs<'a> {
    combine: Combine,
    delta: &'a [f32],
    inputs: &'a [f32],
    fan_in: usize,
    batch: usize,
    band: &'a mut [f32],
}

/// Units whose gradients are summed together, sharing each load of an example's inputs.
const GRADIENT_UNITS: usize = 8;

impl WithSimd for GradientOfFewInputs<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            combine,
            delta,
            inputs,
            fan_in,
            batch,
            band,
        } = self;
        let lanes = lanes::<S>();
        #[cfg(target_arch = "x86_64")]
        let wide_and_narrow = (lanes == MAX_LANES
            && (MAX_LANES + 1..=MAX_LANES + NARROW_LANES).contains(&fan_in))
        .then(pulp::x86::V4::try_new)
        .flatten();
        let rows = band.chunks_exact_mut(fan_in * GRADIENT_UNITS);
        let errors = delta.chunks_exact(batch * GRADIENT_UNITS);
        for (rows, errors) in rows.zip(errors) {
            #[cfg(target_arch = "x86_64")]
            if let Some(simd) = wide_and_narrow {
                gradient_of_unit_block_wide_and_narrow(simd, combine, errors, inputs, fan_in, rows);
                continue;
            }
            // Two windows at a time: one window's sums alone would wait on each other's latency.
            for start in (0..fan_in).step_by(2 * lanes) {
                let (first, first_owned) = feature_window(fan_in, lanes, start);
                match (start + lanes < fan_in).then(|| feature_window(fan_in, lanes, start + lanes))
                {
                    Some((second, _)) => {
                        let sums = gradient_of_unit_block(
                            simd,
                            errors,
                            inputs,
                            fan_in,
                            [first.clone(), second.clone()],
                        );
                        debug_assert!(first == first_owned, "only a last window overlaps");
                        for (row, [sum, other]) in rows.chunks_exact_mut(fan_in).zip(sums) {
                            let sum = combined(simd, &row[first.clone()], sum, combine);
                            let other = combined(simd, &row[second.clone()], other, combine);
                            // Where the second window overlaps the first it holds the very values
                            // the first does (the same products summed in the same order), so
                            // both are stored whole: no lane is picked out of a vector.
                            store(simd, &mut row[second.clone()], other);
                            store(simd, &mut row[first.clone()], sum);
                        }
                    }
                    None => {
                        let sums =
                            gradient_of_unit_block(simd, errors, inputs, fan_in, [first.clone()]);
                        for (row, [sum]) in rows.chunks_exact_mut(fan_in).zip(sums) {
                            combine_into(simd, row, &first, &first_owned, sum, combine);
                        }
                    }
                }
            }
        }
        // The band's last units, fewer than a block, one by one.
        let whole = band.len() / (fan_in * GRADIENT_UNITS) * GRADIENT_UNITS;
        let rows = band[whole * fan_in..].chunks_exact_mut(fan_in);
        let errors = delta[whole * batch..].chunks_exact(batch);
        for (row, errors) in rows.zip(errors) {
            for start in (0..fan_in).step_by(lanes) {
                let owned = start..fan_in.min(start + lanes);
                let mut sum = simd.splat_f32s(0.0);
                for (&error, example) in errors.iter().zip(inputs.chunks_exact(fan_in)) {
                    let values = load(simd, &example[owned.clone()]);
                    sum = simd.mul_add_f32s(simd.splat_f32s(error), values, sum);
                }
                combine_into(simd, row, &owned, &owned, sum, combine);
            }
        }
    }
}

/// The lanes of the narrower vector [`gradient_of_unit_block_wide_and_narrow`] uses with AVX-512.
#[cfg(target_arch = "x86_64")]
const NARROW_LANES: usize = 8;

/// [`gradient_of_unit_block`] and its combining into the target `rows`, with AVX-512, for rows of
/// 17 to 24 features: features 0–15 in a vector of 16 lanes and the last 8 in one of 8, where two
/// vectors of 16 would leave 8 to 15 of their 32 lanes without use (12 for the default sweep's
/// 20 features). Where an AVX-512 multiply-add runs as two halves, as on AMD's Zen 4, that is a
/// quarter fewer halves; elsewhere the same count of instructions. Each G_{u,k} is the same chain
/// of multiply-adds over the batch as in [`gradient_over_examples`]; where the two vectors overlap
/// they hold the same values.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn gradient_of_unit_block_wide_and_narrow(
    simd: pulp::x86::V4,
    combine: Combine,
    errors: &[f32],
    inputs: &[f32],
    fan_in: usize,
    rows: &mut [f32],
) {
    use pulp::{f32x8, f32x16};
    let narrow_simd = *simd;
    let narrow = fan_in - NARROW_LANES..fan_in;
    let batch = errors.len() / GRADIENT_UNITS;
    let [e0, e1, e2, e3, e4, e5, e6, e7]: [&[f32]; GRADIENT_UNITS] =
        std::array::from_fn(|unit| &errors[unit * batch..(unit + 1) * batch]);
    let mut wide_sums = [simd.splat_f32s(0.0); GRADIENT_UNITS];
    let mut narrow_sums = [narrow_simd.splat_f32x8(0.0); GRADIENT_UNITS];
    // Zipped as in `gradient_over_examples`, for the same reason.
    let examples = e0
        .iter()
        .zip(e1)
        .zip(e2)
        .zip(e3)
        .zip(e4)
        .zip(e5)
        .zip(e6)
        .zip(e7)
        .zip(inputs.chunks_exact(fan_in));
    for ((((((((e0, e1), e2), e3), e4), e5), e6), e7), example) in examples {
        let wide: f32x16 = load_whole(&example[..MAX_LANES]);
        let narrow: f32x8 = load_whole(&example[narrow.clone()]);
        let sums = wide_sums.iter_mut().zip(&mut narrow_sums);
        for ((wide_sum, narrow_sum), &error) in sums.zip([e0, e1, e2, e3, e4, e5, e6, e7]) {
            *wide_sum = simd.mul_add_f32s(simd.splat_f32s(error), wide, *wide_sum);
            *narrow_sum =
                narrow_simd.mul_add_f32x8(narrow_simd.splat_f32x8(error), narrow, *narrow_sum);
        }
    }
    let sums = wide_sums.into_iter().zip(narrow_sums);
    for (row, (wide_sum, narrow_sum)) in rows.chunks_exact_mut(fan_in).zip(sums) {
        let wide_sum = combined(simd, &row[..MAX_LANES], wide_sum, combine);
        let narrow_sum = combined(narrow_simd, &row[narrow.clone()], narrow_sum, combine);
        store(narrow_simd, &mut row[narrow.clone()], narrow_sum);
        store(simd, &mut row[..MAX_LANES], wide_sum);
    }
}

/// The vector of a row of `fan_in` features that starts at `start`, as (the features it loads,
/// the features it writes). A last vector shorter than the lanes loads the whole vector that ends
/// the row, so that every load in the sum over the batch is a whole vector.
#[inline(always)]
fn feature_window(fan_in: usize, lanes: usize, start: usize) -> (Range<usize>, Range<usize>) {
    let owned = start..fan_in.min(start + lanes);
    let window = if owned.len() < lanes && fan_in >= lanes {
        fan_in - lanes..fan_in
    } else {
        owned.clone()
    };
    (window, owned)
}

/// Σ_b Δ_{u,b} X_{b,k} over the batch for [`GRADIENT_UNITS`] units (`errors`: their rows of Δ)
/// and the features of `WINDOWS` vectors, one vector each.
#[inline(always)]
fn gradient_of_unit_block<S: Simd, const WINDOWS: usize>(
    simd: S,
    errors: &[f32],
    inputs: &[f32],
    fan_in: usize,
    windows: [Range<usize>; WINDOWS],
) -> [[S::f32s; WINDOWS]; GRADIENT_UNITS] {
    // Whether the windows are whole vectors is settled once, outside the loop over examples: a
    // branch inside it keeps the errors' loads from folding into their broadcasts.
    if windows.iter().all(|window| window.len() == lanes::<S>()) {
        gradient_over_examples(simd, errors, inputs, fan_in, windows, load_whole::<S::f32s>)
    } else {
        gradient_over_examples(simd, errors, inputs, fan_in, windows, |values| {
            simd.partial_load_f32s(values)
        })
    }
}

/// [`gradient_of_unit_block`] with the windows read by `load`.
#[inline(always)]
fn gradient_over_examples<S: Simd, const WINDOWS: usize>(
    simd: S,
    errors: &[f32],
    inputs: &[f32],
    fan_in: usize,
    windows: [Range<usize>; WINDOWS],
    load: impl Fn(&[f32]) -> S::f32s,
) -> [[S::f32s; WINDOWS]; GRADIENT_UNITS] {
    let batch = errors.len() / GRADIENT_UNITS;
    let [e0, e1, e2, e3, e4, e5, e6, e7]: [&[f32]; GRADIENT_UNITS] =
        std::array::from_fn(|unit| &errors[unit * batch..(unit + 1) * batch]);
    let mut sums = [[simd.splat_f32s(0.0); WINDOWS]; GRADIENT_UNITS];
    // Zipped iterators: indexing eight rows by example would check each index, and the checks
    // crowd out the multiply-adds.
    let examples = e0
        .iter()
        .zip(e1)
        .zip(e2)
        .zip(e3)
        .zip(e4)
        .zip(e5)
        .zip(e6)
        .zip(e7)
        .zip(inputs.chunks_exact(fan_in));
    for ((((((((e0, e1), e2), e3), e4), e5), e6), e7), example) in examples {
        let mut values = [simd.splat_f32s(0.0); WINDOWS];
        for (values, window) in values.iter_mut().zip(&windows) {
            *values = load(&example[window.clone()]);
        }
        for (sums, &error) in sums.iter_mut().zip([e0, e1, e2, e3, e4, e5, e6, e7]) {
            let error = simd.splat_f32s(error);
            for (sum, &values) in sums.iter_mut().zip(&values) {
                *sum = simd.mul_add_f32s(error, values, *sum);
            }
        }
    }
    sums
}

/// The gradient `sum` combined with the `values` it goes to, as `combine` says.
#[inline(always)]
fn combined<S: Simd>(simd: S, values: &[f32], sum: S::f32s, combine: Combine) -> S::f32s {
    match combine {
        Combine::Replace => sum,
        Combine::Fold { keep, scale } => {
            let kept = simd.mul_f32s(simd.splat_f32s(keep), load(simd, values));
            simd.mul_add_f32s(simd.splat_f32s(scale), sum, kept)
        }
    }
}

/// Combines the gradient `sum` of one unit's features `window` into its `row` of the target,
/// for the features `owned` (inside `window`).
#[inline(always)]
fn combine_into<S: Simd>(
    simd: S,
    row: &mut [f32],
    window: &Range<usize>,
    owned: &Range<usize>,
    sum: S::f32s,
    combine: Combine,
) {
    if window == owned {
        let combined = combined(simd, &row[owned.clone()], sum, combine);
        store(simd, &mut row[owned.clone()], combined);
    } else {
        // The same arithmetic as above, lane by lane.
        let sums: &[f32] = bytemuck::cast_slice(std::slice::from_ref(&sum));
        for feature in owned.clone() {
            let gradient = sums[feature - window.start];
            row[feature] = match combine {
                Combine::Replace => gradient,
                Combine::Fold { keep, scale } => scale.mul_add(gradient, keep * row[feature]),
            };
        }
    }
}

/// Where a kernel writes `VECTORS` vectors of examples of a band's units.
struct Place<'a, const VECTORS: usize> {
    band: &'a mut [f32],
    first_unit: usize,
    batch: usize,
    starts: [usize; VECTORS],
    examples: [usize; VECTORS],
}

/// σ(b + Σ_k W_{u,k} x_k) for `count` (at most [`UNIT_BLOCK`]) units from `first`, over the
/// vectors of examples of `place`, given feature by feature, stored in `place`; `largest` is
/// raised to the bits of the largest magnitude stored.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn unit_block<S: Simd, const VECTORS: usize>(
    simd: S,
    features: &[[S::f32s; VECTORS]],
    weights: &[f32],
    bias: Option<&[f32]>,
    (first, count): (usize, usize),
    relu: bool,
    place: &mut Place<'_, VECTORS>,
    mut largest: S::u32s,
) -> S::u32s {
    let fan_in = features.len();
    let zero = simd.splat_f32s(0.0);
    let mut sums = [[zero; VECTORS]; UNIT_BLOCK];
    if let Some(bias) = bias {
        for (sums, &bias) in sums[..count].iter_mut().zip(&bias[first..first + count]) {
            *sums = [simd.splat_f32s(bias); VECTORS];
        }
    }
    let rows = weights[first * fan_in..(first + count) * fan_in].chunks_exact(fan_in);
    for (feature, values) in features.iter().enumerate() {
        for (sums, row) in sums[..count].iter_mut().zip(rows.clone()) {
            let weight = simd.splat_f32s(row[feature]);
            for (sum, &values) in sums.iter_mut().zip(values) {
                *sum = simd.mul_add_f32s(weight, values, *sum);
            }
        }
    }
    for (unit, sums) in sums[..count].iter().enumerate() {
        let row = (first + unit - place.first_unit) * place.batch;
        for ((&sum, &start), &examples) in sums.iter().zip(&place.starts).zip(&place.examples) {
            let sum = if relu {
                simd.select_f32s(simd.less_than_f32s(sum, zero), zero, sum)
            } else {
                sum
            };
            let at = row + start;
            largest = store_noting_largest(simd, &mut place.band[at..at + examples], sum, largest);
        }
    }
    largest
}

/// `output` (fan_out × batch) = W A + b for a layer with at most [`FEW_OUTPUTS`] outputs:
/// `weights` fan_out × fan_in row-major, `activated` fan_in × batch (the previous layer's
/// output), `bias` fan_out values or none. On the calling thread: the sum runs over the wide side.
pub fn forward_to_few_outputs(
    weights: &[f32],
    bias: Option<&[f32]>,
    activated: &[f32],
    fan_out: usize,
    batch: usize,
    output: &mut [f32],
) {
    assert!(
        (1..=FEW_OUTPUTS).contains(&fan_out),
        "{fan_out} outputs is not few"
    );
    let fan_in = weights.len() / fan_out;
    assert!(weights.len() == fan_out * fan_in && activated.len() >= fan_in * batch);
    assert!(output.len() >= fan_out * batch && bias.is_none_or(|bias| bias.len() == fan_out));
    with_outputs!(fan_out, |OUTPUTS| Arch::new().dispatch(FewOutputs::<
        OUTPUTS,
    > {
        weights,
        bias,
        activated,
        fan_in,
        batch,
        output,
    }));
}

struct FewOutputs<'a, const OUTPUTS: usize> {
    weights: &'a [f32],
    bias: Option<&'a [f32]>,
    activated: &'a [f32],
    fan_in: usize,
    batch: usize,
    output: &'a mut [f32],
}

impl<const OUTPUTS: usize> WithSimd for FewOutputs<'_, OUTPUTS> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            weights,
            bias,
            activated,
            fan_in,
            batch,
            output,
        } = self;
        let lanes = lanes::<S>();
        let rows: [&[f32]; OUTPUTS] =
            std::array::from_fn(|output| &weights[output * fan_in..(output + 1) * fan_in]);
        let layer = (simd, rows, bias, activated, batch);
        let partial = |values: &[f32]| load(simd, values);
        let mut start = 0;
        // Two vectors of examples at a time where there are two: each output's sum over the
        // units is one chain of multiply-adds per example, which alone would wait on each step's
        // latency.
        while batch - start > lanes {
            let second = lanes.min(batch - start - lanes);
            let examples = [lanes, second];
            if second == lanes {
                outputs_over_units(layer, [start, start + lanes], examples, load_whole, output);
            } else {
                outputs_over_units(layer, [start, start + lanes], examples, partial, output);
            }
            start += lanes + second;
        }
        if start < batch {
            outputs_over_units(layer, [start], [batch - start], partial, output);
        }
    }
}

/// [`FewOutputs`] for `VECTORS` vectors of examples, from `starts`, `examples` long, read by
/// `read`: the layer as (its SIMD, each output's weights, its biases, its inputs, the batch).
#[allow(clippy::type_complexity)]
#[inline(always)]
fn outputs_over_units<S: Simd, const OUTPUTS: usize, const VECTORS: usize>(
    (simd, rows, bias, activated, batch): (S, [&[f32]; OUTPUTS], Option<&[f32]>, &[f32], usize),
    starts: [usize; VECTORS],
    examples: [usize; VECTORS],
    read: impl Fn(&[f32]) -> S::f32s,
    output: &mut [f32],
) {
    let zero = simd.splat_f32s(0.0);
    let mut sums = [[zero; VECTORS]; OUTPUTS];
    if let Some(bias) = bias {
        for (sums, &bias) in sums.iter_mut().zip(bias) {
            *sums = [simd.splat_f32s(bias); VECTORS];
        }
    }
    for (unit, inputs) in activated
        .chunks_exact(batch)
        .take(rows[0].len())
        .enumerate()
    {
        let mut values = [zero; VECTORS];
        for ((values, &start), &examples) in values.iter_mut().zip(&starts).zip(&examples) {
            *values = read(&inputs[start..start + examples]);
        }
        for (sums, row) in sums.iter_mut().zip(&rows) {
            let weight = simd.splat_f32s(row[unit]);
            for (sum, &values) in sums.iter_mut().zip(&values) {
                *sum = simd.mul_add_f32s(weight, values, *sum);
            }
        }
    }
    for (class, sums) in sums.iter().enumerate() {
        for ((&sum, &start), &examples) in sums.iter().zip(&starts).zip(&examples) {
            let at = class * batch + start;
            store(simd, &mut output[at..at + examples], sum);
        }
    }
}

/// `delta_previous` (fan_in × batch) = σ'(z) ⊙ (Wᵀ Δ), the error a layer with at most
/// [`FEW_OUTPUTS`] outputs sends back to the hidden layer before it: `weights` fan_out × fan_in
/// row-major, `delta` fan_out × batch, `activated` = σ(z) of the layer before (fan_in × batch),
/// with σ' expressed through it. Runs on up to `threads` threads. Returns the error's
/// [`largest_magnitude`], taken as it is written.
pub fn send_back_through_few_outputs(
    weights: &[f32],
    delta: &[f32],
    activated: &[f32],
    batch: usize,
    activation: Activation,
    delta_previous: &mut [f32],
    threads: usize,
) -> f32 {
    let fan_out = delta.len() / batch.max(1);
    assert!(
        (1..=FEW_OUTPUTS).contains(&fan_out),
        "{fan_out} outputs is not few"
    );
    let fan_in = weights.len() / fan_out;
    assert!(weights.len() == fan_out * fan_in && delta.len() == fan_out * batch);
    assert!(activated.len() >= fan_in * batch && delta_previous.len() >= fan_in * batch);
    let largest = AtomicU32::new(0);
    in_unit_bands(
        &mut delta_previous[..fan_in * batch],
        batch,
        fan_out,
        threads,
        &|units, band| {
            let band_largest = with_outputs!(fan_out, |OUTPUTS| Arch::new().dispatch(SendBack::<
                OUTPUTS,
            > {
                weights,
                delta,
                activated,
                fan_in,
                batch,
                activation,
                units,
                band,
            }));
            largest.fetch_max(band_largest.to_bits(), Ordering::Relaxed);
        },
    );
    f32::from_bits(largest.into_inner())
}

struct SendBack<'a, const OUTPUTS: usize> {
    weights: &'a [f32],
    delta: &'a [f32],
    activated: &'a [f32],
    fan_in: usize,
    batch: usize,
    activation: Activation,
    units: Range<usize>,
    band: &'a mut [f32],
}

impl<const OUTPUTS: usize> WithSimd for SendBack<'_, OUTPUTS> {
    /// The largest magnitude written.
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> f32 {
        let Self {
            weights,
            delta,
            activated,
            fan_in,
            batch,
            activation,
            units,
            band,
        } = self;
        let lanes = lanes::<S>();
        // Each output's weights to the band's units, and the band's inputs.
        let rows: [&[f32]; OUTPUTS] = std::array::from_fn(|output| {
            &weights[output * fan_in + units.start..output * fan_in + units.end]
        });
        let activated = &activated[units.start * batch..units.end * batch];
        let layer = (simd, rows, delta, activated, batch);
        let relu = activation == Activation::Relu;
        let partial = |values: &[f32]| load(simd, values);
        let mut largest = simd.splat_u32s(0);
        let mut start = 0;
        // Two vectors of examples at a time where there are two, so that each weight is
        // broadcast once for both.
        while batch - start > lanes {
            let second = lanes.min(batch - start - lanes);
            let part = ([start, start + lanes], [lanes, second]);
            largest = match (relu, second == lanes) {
                (true, true) => {
                    errors_over_units::<_, _, 2, true>(layer, part, load_whole, band, largest)
                }
                (false, true) => {
                    errors_over_units::<_, _, 2, false>(layer, part, load_whole, band, largest)
                }
                (true, false) => {
                    errors_over_units::<_, _, 2, true>(layer, part, partial, band, largest)
                }
                (false, false) => {
                    errors_over_units::<_, _, 2, false>(layer, part, partial, band, largest)
                }
            };
            start += lanes + second;
        }
        if start < batch {
            let part = ([start], [batch - start]);
            largest = match relu {
                true => errors_over_units::<_, _, 1, true>(layer, part, partial, band, largest),
                false => errors_over_units::<_, _, 1, false>(layer, part, partial, band, largest),
            };
        }
        largest_of(largest)
    }
}

/// [`SendBack`] for `VECTORS` vectors of examples, `part` = (where they start, how many examples
/// each holds), read by `read`, with ReLU or tanh as σ, raising `largest` to the bits of the
/// largest magnitude written: the layer as (its SIMD, each output's
/// weights to the band's units, the output errors, the band's σ(z), the batch).
#[allow(clippy::type_complexity)]
#[inline(always)]
fn errors_over_units<S: Simd, const OUTPUTS: usize, const VECTORS: usize, const RELU: bool>(
    (simd, rows, delta, activated, batch): (S, [&[f32]; OUTPUTS], &[f32], &[f32], usize),
    (starts, examples): ([usize; VECTORS], [usize; VECTORS]),
    read: impl Fn(&[f32]) -> S::f32s,
    band: &mut [f32],
    mut largest: S::u32s,
) -> S::u32s {
    let (zero, one) = (simd.splat_f32s(0.0), simd.splat_f32s(1.0));
    let mut errors = [[zero; VECTORS]; OUTPUTS];
    for (class, errors) in errors.iter_mut().enumerate() {
        for ((error, &start), &examples) in errors.iter_mut().zip(&starts).zip(&examples) {
            let at = class * batch + start;
            *error = read(&delta[at..at + examples]);
        }
    }
    let units = activated
        .chunks_exact(batch)
        .zip(band.chunks_exact_mut(batch));
    for (unit, (values, sent)) in units.enumerate() {
        let mut weights = [zero; OUTPUTS];
        for (weight, row) in weights.iter_mut().zip(&rows) {
            *weight = simd.splat_f32s(row[unit]);
        }
        for (vector, (&start, &examples)) in starts.iter().zip(&examples).enumerate() {
            let mut sum = zero;
            for (&weight, errors) in weights.iter().zip(&errors) {
                sum = simd.mul_add_f32s(weight, errors[vector], sum);
            }
            let values = read(&values[start..start + examples]);
            let error = if RELU {
                simd.select_f32s(simd.less_than_or_equal_f32s(values, zero), zero, sum)
            } else {
                simd.mul_f32s(sum, simd.sub_f32s(one, simd.mul_f32s(values, values)))
            };
            let slot = &mut sent[start..start + examples];
            largest = store_noting_largest(simd, slot, error, largest);
        }
    }
    largest
}

/// Whether [`weight_gradient_to_few_outputs`] takes the weight gradient of a layer with
/// `fan_out` outputs (at most [`FEW_OUTPUTS`]), `fan_in` inputs and `batch` examples: it runs on
/// the calling thread, so only below the size at which the products here share out their bands
/// (whatever the team's size, so that the numbers do not depend on it).
pub fn takes_gradient_to_few_outputs(fan_out: usize, fan_in: usize, batch: usize) -> bool {
    (1..=FEW_OUTPUTS).contains(&fan_out)
        && batch > 0
        && fan_out * fan_in * batch < PARALLEL_MIN_MULTIPLY_ADDS
}

/// The weight gradient G = Δ Aᵀ of a layer with at most [`FEW_OUTPUTS`] outputs, combined into
/// `target` (fan_out × fan_in row-major) as `combine` says: `delta` fan_out × batch, `activated`
/// fan_in × batch (the layer's inputs, unit by unit). On the calling thread.
///
/// Each G_{c,u} = Σ_b Δ_{c,b} A_{u,b} runs along the examples, so it ends in a sum across a
/// vector's lanes. Its order is fixed for every vector width: example b goes to partial sum
/// b mod 16, each partial sum a chain of `mul_add`s in example order, and the 16 are added by
/// halves (p_l + p_{l+8}, then the first 4 of those with the next 4, …), which is how pulp's
/// horizontal sums fold a vector of AVX-512 or AVX2 (a test holds the widths bit-identical).
pub fn weight_gradient_to_few_outputs(
    target: &mut [f32],
    combine: Combine,
    delta: &[f32],
    activated: &[f32],
    batch: usize,
) {
    let fan_out = delta.len() / batch.max(1);
    assert!(
        (1..=FEW_OUTPUTS).contains(&fan_out),
        "{fan_out} outputs is not few"
    );
    let fan_in = target.len() / fan_out;
    assert!(target.len() == fan_out * fan_in && delta.len() == fan_out * batch);
    assert!(activated.len() >= fan_in * batch);
    with_outputs!(fan_out, |OUTPUTS| Arch::new().dispatch(
        GradientToFewOutputs::<OUTPUTS> {
            combine,
            delta,
            activated,
            batch,
            target,
        }
    ));
}

struct GradientToFewOutputs<'a, const OUTPUTS: usize> {
    combine: Combine,
    delta: &'a [f32],
    activated: &'a [f32],
    batch: usize,
    target: &'a mut [f32],
}

impl<const OUTPUTS: usize> WithSimd for GradientToFewOutputs<'_, OUTPUTS> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self {
            combine,
            delta,
            activated,
            batch,
            target,
        } = self;
        // Vectors holding one partial sum each of the 16: 1 with AVX-512, 2 with AVX2.
        match MAX_LANES / lanes::<S>() {
            1 => gradient_to_few_outputs::<S, OUTPUTS, 1>(
                simd, combine, delta, activated, batch, target,
            ),
            2 => gradient_to_few_outputs::<S, OUTPUTS, 2>(
                simd, combine, delta, activated, batch, target,
            ),
            4 => gradient_to_few_outputs::<S, OUTPUTS, 4>(
                simd, combine, delta, activated, batch, target,
            ),
            8 => gradient_to_few_outputs::<S, OUTPUTS, 8>(
                simd, combine, delta, activated, batch, target,
            ),
            16 => gradient_to_few_outputs::<S, OUTPUTS, 16>(
                simd, combine, delta, activated, batch, target,
            ),
            other => unreachable!("{other} vectors to 16 lanes"),
        }
    }
}

/// [`weight_gradient_to_few_outputs`] with vectors of 16 / `PARTS` lanes.
#[inline(always)]
fn gradient_to_few_outputs<S: Simd, const OUTPUTS: usize, const PARTS: usize>(
    simd: S,
    combine: Combine,
    delta: &[f32],
    activated: &[f32],
    batch: usize,
    target: &mut [f32],
) {
    let lanes = lanes::<S>();
    let fan_in = target.len() / OUTPUTS;
    let zero = simd.splat_f32s(0.0);
    let whole_groups = batch.is_multiple_of(MAX_LANES);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if PARTS == 1
        && let Some(simd) = pulp::x86::V4::try_new()
    {
        done = gradient_to_few_outputs_in_blocks::<OUTPUTS>(
            simd, combine, delta, activated, batch, target,
        );
    }
    let rows = activated.chunks_exact(batch).take(fan_in).enumerate();
    for (unit, row) in rows.skip(done) {
        let mut sums = [[zero; PARTS]; OUTPUTS];
        if whole_groups {
            // Every load a whole vector, every index known when compiled: the sums stay in
            // registers.
            for (group, values) in row.chunks_exact(MAX_LANES).enumerate() {
                for part in 0..PARTS {
                    let start = group * MAX_LANES + part * lanes;
                    let values = load_whole(&values[part * lanes..(part + 1) * lanes]);
                    for (class, sums) in sums.iter_mut().enumerate() {
                        let at = class * batch + start;
                        let errors = load_whole(&delta[at..at + lanes]);
                        sums[part] = simd.mul_add_f32s(errors, values, sums[part]);
                    }
                }
            }
        } else {
            for start in (0..batch).step_by(lanes) {
                // Zeros beyond the batch: they leave a partial sum as it is.
                let part = (start / lanes) % PARTS;
                let examples = lanes.min(batch - start);
                let values = load(simd, &row[start..start + examples]);
                for (class, sums) in sums.iter_mut().enumerate() {
                    let at = class * batch + start;
                    let errors = load(simd, &delta[at..at + examples]);
                    sums[part] = simd.mul_add_f32s(errors, values, sums[part]);
                }
            }
        }
        let mut gradients = [0.0f32; OUTPUTS];
        for (gradient, sums) in gradients.iter_mut().zip(&mut sums) {
            let mut count = PARTS;
            while count > 1 {
                count /= 2;
                for index in 0..count {
                    sums[index] = simd.add_f32s(sums[index], sums[index + count]);
                }
            }
            *gradient = simd.reduce_sum_f32s(sums[0]);
        }
        match combine {
            Combine::Replace => {
                for (class, gradient) in gradients.into_iter().enumerate() {
                    target[class * fan_in + unit] = gradient;
                }
            }
            Combine::Fold { keep, scale } => {
                for (class, gradient) in gradients.into_iter().enumerate() {
                    let slot = &mut target[class * fan_in + unit];
                    *slot = scale.mul_add(gradient, keep * *slot);
                }
            }
        }
    }
}

/// Units whose sums across the lanes [`gradient_to_few_outputs_in_blocks`] forms together.
#[cfg(target_arch = "x86_64")]
const LANE_SUM_BLOCK: usize = 16;

/// [`gradient_to_few_outputs`] with AVX-512 for the units of whole blocks of
/// [`LANE_SUM_BLOCK`], where a batch is 1, 2 or 4 vectors of examples: the errors stay in
/// registers, and the sums across the lanes of a block's units are formed together by shuffles,
/// each as [`Simd::reduce_sum_f32s`] forms one (halves, then quarters, …), so that the sums come out
/// in the bits the per-unit path gives, with a third of its shuffles and the gradient combined into
/// the target a vector at a time. Returns the units done.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn gradient_to_few_outputs_in_blocks<const OUTPUTS: usize>(
    simd: pulp::x86::V4,
    combine: Combine,
    delta: &[f32],
    activated: &[f32],
    batch: usize,
    target: &mut [f32],
) -> usize {
    match batch {
        16 => in_blocks::<OUTPUTS, 1>(simd, combine, delta, activated, target),
        32 => in_blocks::<OUTPUTS, 2>(simd, combine, delta, activated, target),
        64 => in_blocks::<OUTPUTS, 4>(simd, combine, delta, activated, target),
        _ => 0,
    }
}

/// [`gradient_to_few_outputs_in_blocks`] for a batch of `GROUPS` vectors.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn in_blocks<const OUTPUTS: usize, const GROUPS: usize>(
    simd: pulp::x86::V4,
    combine: Combine,
    delta: &[f32],
    activated: &[f32],
    target: &mut [f32],
) -> usize {
    use pulp::f32x16;
    let batch = GROUPS * MAX_LANES;
    let fan_in = target.len() / OUTPUTS;
    let zero = simd.splat_f32s(0.0);
    let mut errors = [[zero; GROUPS]; OUTPUTS];
    for (errors, row) in errors.iter_mut().zip(delta.chunks_exact(batch)) {
        for (errors, values) in errors.iter_mut().zip(row.chunks_exact(MAX_LANES)) {
            *errors = load_whole(values);
        }
    }
    let blocks = fan_in / LANE_SUM_BLOCK;
    let rows = activated[..blocks * LANE_SUM_BLOCK * batch].chunks_exact(LANE_SUM_BLOCK * batch);
    // Unit 4j + q's partial sums at position j + 4q: the shuffles below then leave unit u's sum in
    // lane u. Every block writes all of it, so it is cleared once: 4 KB cleared per block were a
    // twentieth of a training step at width 4096.
    let mut by_position = [[zero; OUTPUTS]; LANE_SUM_BLOCK];
    for (block, rows) in rows.enumerate() {
        for (unit, row) in rows.chunks_exact(batch).enumerate() {
            let mut sums = [zero; OUTPUTS];
            for (group, values) in row.chunks_exact(MAX_LANES).enumerate() {
                let values: f32x16 = load_whole(values);
                for (sum, errors) in sums.iter_mut().zip(&errors) {
                    *sum = simd.mul_add_f32s(errors[group], values, *sum);
                }
            }
            by_position[unit / 4 + 4 * (unit % 4)] = sums;
        }
        for class in 0..OUTPUTS {
            let gradients = sums_across_lanes(simd, &by_position, class);
            let at = class * fan_in + block * LANE_SUM_BLOCK;
            let slot = &mut target[at..at + LANE_SUM_BLOCK];
            let combined = match combine {
                Combine::Replace => gradients,
                Combine::Fold { keep, scale } => {
                    let kept = simd.mul_f32s(simd.splat_f32s(keep), load_whole(slot));
                    simd.mul_add_f32s(simd.splat_f32s(scale), gradients, kept)
                }
            };
            slot.copy_from_slice(bytemuck::cast_slice(std::slice::from_ref(&combined)));
        }
    }
    blocks * LANE_SUM_BLOCK
}

/// The sums across the lanes of the 16 vectors `partials[·][class]`, in one vector: lane 4j + q
/// holds the sum of `partials[j + 4q][class]`. Each is added as [`Simd::reduce_sum_f32s`] adds one
/// vector: lane l with lane l + 8, then l with l + 4, l with l + 2 and l with l + 1, lower lanes
/// first; here four levels of shuffles pair the vectors' halves, quarters, … so that each add
/// works for several vectors at once.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn sums_across_lanes<const OUTPUTS: usize>(
    simd: pulp::x86::V4,
    partials: &[[pulp::f32x16; OUTPUTS]; LANE_SUM_BLOCK],
    class: usize,
) -> pulp::f32x16 {
    use pulp::{cast, f32x16};
    let f = simd.avx512f;
    let zero = simd.splat_f32s(0.0);
    // Lanes 0–7: the halves of one vector added, lanes 8–15: those of the next.
    let mut halves = [zero; 8];
    for (pair, halves) in halves.iter_mut().enumerate() {
        let (a, b) = (
            cast!(partials[2 * pair][class]),
            cast!(partials[2 * pair + 1][class]),
        );
        let low: f32x16 = cast!(f._mm512_shuffle_f32x4::<0b01_00_01_00>(a, b));
        let high: f32x16 = cast!(f._mm512_shuffle_f32x4::<0b11_10_11_10>(a, b));
        *halves = simd.add_f32s(low, high);
    }
    // 128-bit block k: the quarters of the half that lands there, added.
    let mut quarters = [zero; 4];
    for (pair, quarters) in quarters.iter_mut().enumerate() {
        let (a, b) = (cast!(halves[2 * pair]), cast!(halves[2 * pair + 1]));
        let low: f32x16 = cast!(f._mm512_shuffle_f32x4::<0b10_00_10_00>(a, b));
        let high: f32x16 = cast!(f._mm512_shuffle_f32x4::<0b11_01_11_01>(a, b));
        *quarters = simd.add_f32s(low, high);
    }
    // Within each block: lanes 0–1 one quarter's pairs added, lanes 2–3 the next one's.
    let mut pairs = [zero; 2];
    for (pair, pairs) in pairs.iter_mut().enumerate() {
        let (a, b) = (cast!(quarters[2 * pair]), cast!(quarters[2 * pair + 1]));
        let low: f32x16 = cast!(f._mm512_shuffle_ps::<0b01_00_01_00>(a, b));
        let high: f32x16 = cast!(f._mm512_shuffle_ps::<0b11_10_11_10>(a, b));
        *pairs = simd.add_f32s(low, high);
    }
    let (a, b) = (cast!(pairs[0]), cast!(pairs[1]));
    let low: f32x16 = cast!(f._mm512_shuffle_ps::<0b10_00_10_00>(a, b));
    let high: f32x16 = cast!(f._mm512_shuffle_ps::<0b11_01_11_01>(a, b));
    simd.add_f32s(low, high)
}

/// The whole vector `values` (exactly one vector long).
#[inline(always)]
fn load_whole<V: bytemuck::Pod>(values: &[f32]) -> V {
    bytemuck::pod_read_unaligned(bytemuck::cast_slice(values))
}

/// The vector in `values` (at most one vector long; zeros beyond a shorter slice). A whole vector
/// is read directly: pulp's partial load picks its mask through a jump table on every call.
#[inline(always)]
fn load<S: Simd>(simd: S, values: &[f32]) -> S::f32s {
    if values.len() == lanes::<S>() {
        load_whole(values)
    } else {
        simd.partial_load_f32s(values)
    }
}

/// Writes the first `slot.len()` lanes of `value` to `slot` (at most one vector long).
#[inline(always)]
fn store<S: Simd>(simd: S, slot: &mut [f32], value: S::f32s) {
    if slot.len() == lanes::<S>() {
        bytemuck::cast_slice_mut::<f32, u8>(slot).copy_from_slice(bytemuck::bytes_of(&value));
    } else {
        simd.partial_store_f32s(slot, value);
    }
}

/// Writes `value` to `slot` as [`store`] does, and returns `largest` raised, lane by lane, to the
/// bits of the magnitudes written: with the sign cleared they order as the magnitudes do, a NaN
/// above infinity, as in [`largest_magnitude`].
#[inline(always)]
fn store_noting_largest<S: Simd>(
    simd: S,
    slot: &mut [f32],
    value: S::f32s,
    largest: S::u32s,
) -> S::u32s {
    store(simd, slot, value);
    // Only the lanes written count: a shorter slot is read back, with zeros beyond it.
    let written = if slot.len() == lanes::<S>() {
        value
    } else {
        load(simd, slot)
    };
    let magnitude = simd.and_u32s(
        simd.transmute_u32s_f32s(written),
        simd.splat_u32s(0x7fff_ffff),
    );
    simd.max_u32s(largest, magnitude)
}

/// The largest magnitude whose bits [`store_noting_largest`] kept in the lanes of `largest`.
#[inline(always)]
fn largest_of<V: bytemuck::Pod>(largest: V) -> f32 {
    let lanes: &[u32] = bytemuck::cast_slice(std::slice::from_ref(&largest));
    f32::from_bits(lanes.iter().copied().fold(0, u32::max))
}

/// Lanes of an f32 vector of `S`.
#[inline(always)]
fn lanes<S: Simd>() -> usize {
    std::mem::size_of::<S::f32s>() / std::mem::size_of::<f32>()
}

/// Runs `work(units, rows)` over bands of the units of `output` (units × batch), the bands shared
/// among the trial's threads when the product has at least [`PARALLEL_MIN_MULTIPLY_ADDS`]
/// multiply-adds (`inner` per value); one band on the calling thread otherwise.
fn in_unit_bands(
    output: &mut [f32],
    batch: usize,
    inner: usize,
    threads: usize,
    work: &(dyn Fn(Range<usize>, &mut [f32]) + Sync),
) {
    let units = output.len() / batch.max(1);
    let parts = if output.len() * inner >= PARALLEL_MIN_MULTIPLY_ADDS {
        threads.clamp(1, (units / MIN_BAND).max(1))
    } else {
        1
    };
    if parts == 1 {
        work(0..units, output);
        return;
    }
    let band_units = units.div_ceil(parts).div_ceil(UNIT_BLOCK) * UNIT_BLOCK;
    share_out_chunks(output, band_units * batch, &|index, rows| {
        let first = index * band_units;
        work(first..first + rows.len() / batch.max(1), rows);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::team::on_threads;
    use crate::rng::{Stream, stream};
    use rand::Rng;

    fn values(count: usize, seed: u64) -> Vec<f32> {
        let mut rng = stream(seed, Stream::Init);
        (0..count).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    fn activate(value: f64, activation: Option<Activation>) -> f64 {
        match activation {
            Some(Activation::Relu) => value.max(0.0),
            Some(Activation::Tanh) => value.tanh(),
            None => value,
        }
    }

    fn assert_close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (index, (&got, &want)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(got) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{what}: value {index} is {got}, in f64 {want}"
            );
        }
    }

    /// Batches of whole and partial vectors, one shorter than any vector, and one of several
    /// vectors at every vector width.
    const BATCHES: [usize; 6] = [1, 7, 16, 32, 45, 100];

    #[test]
    fn a_layer_with_few_inputs_matches_the_product_in_f64() {
        for batch in BATCHES {
            for (fan_in, fan_out, bias, activation) in [
                (1, 3, true, None),
                (20, 37, true, Some(Activation::Relu)),
                (32, 9, false, Some(Activation::Tanh)),
                (17, 16, true, Some(Activation::Tanh)),
            ] {
                let weights = values(fan_out * fan_in, 1);
                let biases = values(fan_out, 2);
                let inputs = values(batch * fan_in, 3);
                let mut output = vec![f32::NAN; fan_out * batch];
                let bias = bias.then_some(&biases[..]);
                let largest = forward_from_few_inputs(
                    &weights,
                    bias,
                    &inputs,
                    fan_in,
                    batch,
                    activation,
                    &mut output,
                    1,
                );
                assert_eq!(
                    largest,
                    output.iter().fold(0.0f32, |m, value| m.max(value.abs())),
                    "the largest output, {fan_in} → {fan_out}, batch {batch}"
                );
                let want: Vec<f64> = (0..fan_out * batch)
                    .map(|at| {
                        let (unit, example) = (at / batch, at % batch);
                        let sum: f64 = (0..fan_in)
                            .map(|k| {
                                f64::from(weights[unit * fan_in + k])
                                    * f64::from(inputs[example * fan_in + k])
                            })
                            .sum();
                        activate(sum + bias.map_or(0.0, |b| f64::from(b[unit])), activation)
                    })
                    .collect();
                assert_close(
                    &output,
                    &want,
                    &format!("{fan_in} → {fan_out}, batch {batch}"),
                );
            }
        }
    }

    #[test]
    fn the_largest_magnitude_written_keeps_a_nan() {
        // A NaN input in the last, partial vector of examples.
        let (fan_in, fan_out, batch) = (20, 37, 45);
        let weights = values(fan_out * fan_in, 1);
        let mut inputs = values(batch * fan_in, 3);
        inputs[(batch - 1) * fan_in + 7] = f32::NAN;
        let mut output = vec![0.0; fan_out * batch];
        let relu = Some(Activation::Relu);
        let largest =
            forward_from_few_inputs(&weights, None, &inputs, fan_in, batch, relu, &mut output, 1);
        assert!(largest.is_nan(), "forward: {largest}");
        let (classes, last) = (4, values(4 * fan_out, 4));
        let mut delta = values(classes * batch, 5);
        delta[classes * batch - 1] = f32::NAN;
        let activated = vec![1.0; fan_out * batch];
        let mut sent = vec![0.0; fan_out * batch];
        let relu = Activation::Relu;
        let largest =
            send_back_through_few_outputs(&last, &delta, &activated, batch, relu, &mut sent, 1);
        assert!(largest.is_nan(), "sent back: {largest}");
    }

    #[test]
    fn a_layer_with_few_outputs_matches_the_product_in_f64() {
        for batch in BATCHES {
            for (fan_in, fan_out, bias) in [(1, 1, true), (300, 4, true), (50, 16, false)] {
                let weights = values(fan_out * fan_in, 4);
                let biases = values(fan_out, 5);
                let activated = values(fan_in * batch, 6);
                let mut output = vec![f32::NAN; fan_out * batch];
                let bias = bias.then_some(&biases[..]);
                forward_to_few_outputs(&weights, bias, &activated, fan_out, batch, &mut output);
                let want: Vec<f64> = (0..fan_out * batch)
                    .map(|at| {
                        let (class, example) = (at / batch, at % batch);
                        let sum: f64 = (0..fan_in)
                            .map(|unit| {
                                f64::from(weights[class * fan_in + unit])
                                    * f64::from(activated[unit * batch + example])
                            })
                            .sum();
                        sum + bias.map_or(0.0, |b| f64::from(b[class]))
                    })
                    .collect();
                assert_close(
                    &output,
                    &want,
                    &format!("{fan_in} → {fan_out}, batch {batch}"),
                );
            }
        }
    }

    #[test]
    fn the_error_sent_back_through_few_outputs_matches_its_definition_in_f64() {
        for batch in BATCHES {
            for (fan_in, fan_out, activation) in [
                (1, 1, Activation::Relu),
                (300, 4, Activation::Relu),
                (50, 10, Activation::Tanh),
            ] {
                let weights = values(fan_out * fan_in, 7);
                let delta = values(fan_out * batch, 8);
                // Activations as σ produces them: ReLU's are zero where the unit is off.
                let activated: Vec<f32> = values(fan_in * batch, 9)
                    .into_iter()
                    .map(|z| match activation {
                        Activation::Relu => z.max(0.0),
                        Activation::Tanh => z.tanh(),
                    })
                    .collect();
                let mut sent = vec![f32::NAN; fan_in * batch];
                let largest = send_back_through_few_outputs(
                    &weights, &delta, &activated, batch, activation, &mut sent, 1,
                );
                assert_eq!(
                    largest,
                    sent.iter().fold(0.0f32, |m, value| m.max(value.abs())),
                    "the largest error sent back, {fan_in} ← {fan_out}, batch {batch}"
                );
                let want: Vec<f64> = (0..fan_in * batch)
                    .map(|at| {
                        let (unit, example) = (at / batch, at % batch);
                        let sum: f64 = (0..fan_out)
                            .map(|class| {
                                f64::from(weights[class * fan_in + unit])
                                    * f64::from(delta[class * batch + example])
                            })
                            .sum();
                        let a = f64::from(activated[at]);
                        match activation {
                            Activation::Relu if a <= 0.0 => 0.0,
                            Activation::Relu => sum,
                            Activation::Tanh => sum * (1.0 - a * a),
                        }
                    })
                    .collect();
                assert_close(
                    &sent,
                    &want,
                    &format!("{fan_out} → {fan_in}, batch {batch}"),
                );
            }
        }
    }

    /// Runs `kernel` into copies of `start` with [`Combine::Replace`] and with a fold, and holds
    /// the results against `gradient` (in f64) and against the fold of it into `start`.
    fn assert_combined_as_told(
        start: &[f32],
        gradient: &[f64],
        what: &str,
        kernel: impl Fn(&mut [f32], Combine),
    ) {
        let mut target = start.to_vec();
        kernel(&mut target, Combine::Replace);
        assert_close(&target, gradient, &format!("{what}, replaced"));
        let (keep, scale) = (0.9f32, -0.05f32);
        let mut target = start.to_vec();
        kernel(&mut target, Combine::Fold { keep, scale });
        let folded: Vec<f64> = start
            .iter()
            .zip(gradient)
            .map(|(&w, g)| f64::from(keep) * f64::from(w) + f64::from(scale) * g)
            .collect();
        assert_close(&target, &folded, &format!("{what}, folded"));
    }

    #[test]
    fn the_weight_gradient_of_few_inputs_is_combined_as_told_and_matches_f64() {
        // One vector of features, two whole ones, one and an overlapping last one (with AVX-512,
        // 17 to 24 a vector of 16 and one of 8); units that fill blocks of eight and units left
        // over.
        for fan_in in [1, 5, 16, 17, 20, 24, 32] {
            for (fan_out, batch) in [(8, 32), (13, 7), (3, 45), (21, 16)] {
                let delta = values(fan_out * batch, 15);
                let inputs = values(batch * fan_in, 16);
                let start = values(fan_out * fan_in, 17);
                let gradient: Vec<f64> = (0..fan_out * fan_in)
                    .map(|at| {
                        let (unit, feature) = (at / fan_in, at % fan_in);
                        (0..batch)
                            .map(|example| {
                                f64::from(delta[unit * batch + example])
                                    * f64::from(inputs[example * fan_in + feature])
                            })
                            .sum()
                    })
                    .collect();
                let what = format!("{fan_in} inputs, {fan_out} units, batch {batch}");
                assert_combined_as_told(&start, &gradient, &what, |target, combine| {
                    weight_gradient_of_few_inputs(
                        target, combine, &delta, &inputs, fan_in, batch, 1,
                    )
                });
            }
        }
    }

    #[test]
    fn the_weight_gradient_to_few_outputs_is_combined_as_told_and_matches_f64() {
        // Batches of whole groups of 16, of a part of a vector, of vectors and a part, and of
        // one example; one output and the most there may be.
        for (fan_out, fan_in, batch) in [(4, 37, 32), (1, 5, 7), (16, 9, 45), (3, 64, 64)] {
            for batch in [batch, 1] {
                let delta = values(fan_out * batch, 25);
                let activated = values(fan_in * batch, 26);
                let start = values(fan_out * fan_in, 27);
                let gradient: Vec<f64> = (0..fan_out * fan_in)
                    .map(|at| {
                        let (class, unit) = (at / fan_in, at % fan_in);
                        (0..batch)
                            .map(|example| {
                                f64::from(delta[class * batch + example])
                                    * f64::from(activated[unit * batch + example])
                            })
                            .sum()
                    })
                    .collect();
                let what = format!("{fan_out} outputs, {fan_in} inputs, batch {batch}");
                assert_combined_as_told(&start, &gradient, &what, |target, combine| {
                    weight_gradient_to_few_outputs(target, combine, &delta, &activated, batch)
                });
            }
        }
    }

    /// Each G_{u,k} is one chain over the batch whatever vectors carry it: AVX-512's (for 17 to 24
    /// features a vector of 16 and one of 8), AVX2's and one lane at a time give the same bits,
    /// where this CPU has them.
    #[test]
    fn the_weight_gradient_of_few_inputs_does_not_depend_on_the_vector_width() {
        for (fan_in, fan_out, batch) in [(20, 21, 32), (17, 16, 7), (24, 9, 45), (5, 8, 16)] {
            for fan_in in [fan_in, 32 - fan_in / 4] {
                let delta = values(fan_out * batch, 45);
                let inputs = values(batch * fan_in, 46);
                let start = values(fan_out * fan_in, 47);
                fn kernel<'a>(
                    (delta, inputs): (&'a [f32], &'a [f32]),
                    (fan_in, batch): (usize, usize),
                    band: &'a mut [f32],
                ) -> GradientOfFewInputs<'a> {
                    GradientOfFewInputs {
                        combine: Combine::Fold {
                            keep: 0.9,
                            scale: -0.05,
                        },
                        delta,
                        inputs,
                        fan_in,
                        batch,
                        band,
                    }
                }
                let (data, shape) = ((&delta[..], &inputs[..]), (fan_in, batch));
                let mut one_lane = start.clone();
                pulp::Scalar::new().vectorize(kernel(data, shape, &mut one_lane));
                let what = format!("{fan_in} inputs, {fan_out} units, batch {batch}");
                #[cfg(target_arch = "x86_64")]
                {
                    if let Some(simd) = pulp::x86::V3::try_new() {
                        let mut target = start.clone();
                        Simd::vectorize(simd, kernel(data, shape, &mut target));
                        assert_eq!(target, one_lane, "AVX2, {what}");
                    }
                    if let Some(simd) = pulp::x86::V4::try_new() {
                        let mut target = start.clone();
                        Simd::vectorize(simd, kernel(data, shape, &mut target));
                        assert_eq!(target, one_lane, "AVX-512, {what}");
                    }
                }
            }
        }
    }

    /// The sums across lanes are ordered for 16 lanes, whatever the vector: AVX-512's, AVX2's and
    /// one lane at a time give the same bits, where this CPU has them.
    #[test]
    fn the_weight_gradient_to_few_outputs_does_not_depend_on_the_vector_width() {
        for (fan_in, batch) in [(37, 32), (9, 45), (5, 7), (20, 64), (70, 16), (33, 48)] {
            const OUTPUTS: usize = 4;
            let delta = values(OUTPUTS * batch, 35);
            let activated = values(fan_in * batch, 36);
            let start = values(OUTPUTS * fan_in, 37);
            fn kernel<'a>(
                delta: &'a [f32],
                activated: &'a [f32],
                batch: usize,
                target: &'a mut [f32],
            ) -> GradientToFewOutputs<'a, OUTPUTS> {
                GradientToFewOutputs {
                    combine: Combine::Fold {
                        keep: 0.9,
                        scale: -0.05,
                    },
                    delta,
                    activated,
                    batch,
                    target,
                }
            }
            let mut one_lane = start.clone();
            pulp::Scalar::new().vectorize(kernel(&delta, &activated, batch, &mut one_lane));
            let mut widths = 0;
            #[cfg(target_arch = "x86_64")]
            {
                if let Some(simd) = pulp::x86::V3::try_new() {
                    let mut target = start.clone();
                    Simd::vectorize(simd, kernel(&delta, &activated, batch, &mut target));
                    assert_eq!(target, one_lane, "AVX2, {fan_in} inputs, batch {batch}");
                    widths += 1;
                }
                if let Some(simd) = pulp::x86::V4::try_new() {
                    let mut target = start.clone();
                    Simd::vectorize(simd, kernel(&delta, &activated, batch, &mut target));
                    assert_eq!(target, one_lane, "AVX-512, {fan_in} inputs, batch {batch}");
                    widths += 1;
                }
            }
            eprintln!("{widths} vector widths beside one lane");
        }
    }

    #[test]
    fn products_shared_among_threads_are_bit_identical_to_one_thread() {
        // Every product above the size at which the units are cut into bands (1000 × 540 × 20
        // and 1000 × 540 × 16 multiply-adds).
        let (fan_in, width, classes, batch) = (20, 1000, 16, 540);
        let first = values(width * fan_in, 10);
        let bias = values(width, 11);
        let inputs = values(batch * fan_in, 12);
        let last = values(classes * width, 13);
        let delta = values(classes * batch, 14);
        let run = |threads: usize| {
            on_threads(threads, || {
                let mut hidden = vec![0.0f32; width * batch];
                forward_from_few_inputs(
                    &first,
                    Some(&bias),
                    &inputs,
                    fan_in,
                    batch,
                    Some(Activation::Relu),
                    &mut hidden,
                    threads,
                );
                let mut sent = vec![0.0f32; width * batch];
                send_back_through_few_outputs(
                    &last,
                    &delta,
                    &hidden,
                    batch,
                    Activation::Relu,
                    &mut sent,
                    threads,
                );
                let mut gradient = first.clone();
                weight_gradient_of_few_inputs(
                    &mut gradient,
                    Combine::Fold {
                        keep: 1.0,
                        scale: -0.1,
                    },
                    &sent,
                    &inputs,
                    fan_in,
                    batch,
                    threads,
                );
                let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(&hidden), bits(&sent), bits(&gradient))
            })
            .expect("the helpers start")
        };
        let alone = run(1);
        for threads in [2, 3] {
            assert!(run(threads) == alone, "{threads} threads");
        }
    }
}
