//! Standard normal draws from Philox words by the Box–Muller transform (Box and Muller, "A note on
//! the generation of random normal deviates", Ann. Math. Statist. 29, 1958): uniforms u₁ ∈ (0, 1]
//! and θ ∈ [0, 2π) give the independent normals √(−2 ln u₁) cos θ and √(−2 ln u₁) sin θ.
//!
//! ln, sin and cos are short polynomials (Cephes' `logf`, `sinf` and `cosf` coefficients, Moshier
//! 1989) written as plain arithmetic, so that a group of draws compiles to vector instructions
//! and rounds the same on every x86-64 machine, whatever its vector width; the standard
//! library's calls would do neither. The tests hold each against the f64 functions.
//!
//! u₁ is an f32 from 32 bits and θ takes 24, so no draw exceeds √(66 ln 2) ≈ 6.77 in magnitude
//! (a normal does with probability 1.3 · 10⁻¹¹), and radii below 10⁻³ are resolved to u₁'s
//! spacing of 6 · 10⁻⁸ near 1.

use crate::rng::philox::philox4x32_lanes;

/// Philox blocks computed side by side in one group.
const BLOCKS: usize = 16;
/// Coordinates of one group: each block's four words make two Box–Muller pairs.
pub const GROUP: usize = 4 * BLOCKS;

/// ln x for x in (0, 1] (normal floats), to within a few units in the last place: Cephes'
/// `logf`, x = m · 2ᵉ with m in [√½, √2), ln(1 + (m − 1)) by its degree-9 polynomial.
#[inline(always)]
pub fn ln_unit(x: f32) -> f32 {
    const P: [f32; 9] = [
        7.037_683_6e-2,
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ];
    let bits = x.to_bits();
    let mut exponent = ((bits >> 23) & 0xff) as i32 - 126;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    if m < std::f32::consts::FRAC_1_SQRT_2 {
        exponent -= 1;
        m = m + m - 1.0;
    } else {
        m -= 1.0;
    }
    let e = exponent as f32;
    let z = m * m;
    let mut polynomial = P[0];
    for coefficient in &P[1..] {
        polynomial = polynomial * m + *coefficient;
    }
    // ln 2 split in two, 0.693359375 exactly representable, so e · ln 2 keeps its bits.
    let y = polynomial * m * z + -2.121_944_4e-4 * e + -0.5 * z;
    m + y + 0.693_359_4 * e
}

/// (sin φ, cos φ) for |φ| ≤ π/4, by Cephes' `sinf` and `cosf` polynomials.
#[inline(always)]
pub fn sin_cos_quarter(phi: f32) -> (f32, f32) {
    let z = phi * phi;
    let sin = ((-1.951_529_6e-4 * z + 8.332_161e-3) * z + -1.666_665_5e-1) * z * phi + phi;
    let cos = ((2.443_315_7e-5 * z + -1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0;
    (sin, cos)
}

/// The Box–Muller pair of the words `radius` (u₁) and `angle` (θ).
#[inline(always)]
fn box_muller(radius: u32, angle: u32) -> (f32, f32) {
    const TWO_TO_MINUS_32: f32 = 1.0 / 4_294_967_296.0;
    // u₁ in [2⁻³³, 1]: never 0, so the logarithm is finite.
    let unit = radius as f32 * TWO_TO_MINUS_32 + 0.5 * TWO_TO_MINUS_32;
    let length = (-2.0 * ln_unit(unit)).max(0.0).sqrt();
    // θ = 2π v/4 with v = 24 bits / 2²² in [0, 4): the nearest quarter turn q and the rest
    // φ = (v − q) π/2 in [−π/4, π/4], both exact but for φ's one rounding.
    let grid = angle >> 8;
    let quarter = (grid + (1 << 21)) >> 22;
    let rest = (grid as f32 - (quarter << 22) as f32) * (1.0 / 4_194_304.0);
    let (sin, cos) = sin_cos_quarter(rest * std::f32::consts::FRAC_PI_2);
    // Turning by q quarters: (cos θ, sin θ) = (c, s), (−s, c), (−c, −s), (s, −c) for q = 0..3.
    let (x, y) = if quarter & 1 == 1 {
        (sin, cos)
    } else {
        (cos, sin)
    };
    let cos_sign = ((quarter + 1) & 2) << 30;
    let sin_sign = (quarter & 2) << 30;
    (
        length * f32::from_bits(x.to_bits() ^ cos_sign),
        length * f32::from_bits(y.to_bits() ^ sin_sign),
    )
}

/// The standard normal draws of coordinates GROUP·`group` to GROUP·(`group` + 1) of the stream
/// whose Philox counters end in `stream` (their first word counts blocks) under `key`. Block b
/// of the group gives coordinates b, b + 16 (its first pair) and b + 32, b + 48 (its second),
/// so that each lane's results are stored side by side.
#[inline(always)]
pub fn normal_group(key: [u32; 2], stream: [u32; 3], group: u32, out: &mut [f32; GROUP]) {
    let first_block = group.wrapping_mul(BLOCKS as u32);
    let mut blocks = [0u32; BLOCKS];
    for (lane, block) in blocks.iter_mut().enumerate() {
        *block = first_block.wrapping_add(lane as u32);
    }
    let counters = [
        blocks,
        [stream[0]; BLOCKS],
        [stream[1]; BLOCKS],
        [stream[2]; BLOCKS],
    ];
    let words = philox4x32_lanes::<BLOCKS>(counters, key);
    let (first, second) = out.split_at_mut(2 * BLOCKS);
    for (pair, out) in [(0, first), (2, second)] {
        let (cosines, sines) = out.split_at_mut(BLOCKS);
        for lane in 0..BLOCKS {
            let (z0, z1) = box_muller(words[pair][lane], words[pair + 1][lane]);
            cosines[lane] = z0;
            sines[lane] = z1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::philox::philox4x32;

    #[test]
    fn the_logarithm_is_within_a_few_ulps_of_f64s() {
        // Every exponent from 2⁻³³ to 1 and, within each binade, 4096 evenly spaced mantissas.
        let mut worst = 0.0f64;
        for exponent in -33..=0 {
            for step in 0..4096u32 {
                let x = f32::from_bits((((exponent + 127) as u32) << 23) | (step << 11));
                if x > 1.0 {
                    continue;
                }
                let exact = f64::from(x).ln();
                let error = (f64::from(ln_unit(x)) - exact).abs();
                // Relative where the logarithm is large, absolute (in f32's ulp at 1) near x = 1.
                worst = worst.max(error / exact.abs().max(1.0) / f64::from(f32::EPSILON));
            }
        }
        assert!(worst < 4.0, "worst error {worst} ulps");
        assert_eq!(ln_unit(1.0), 0.0);
    }

    #[test]
    fn sine_and_cosine_are_within_a_few_ulps_of_f64s() {
        let quarter = std::f64::consts::FRAC_PI_4;
        for step in -100_000..=100_000 {
            let phi = (f64::from(step) / 100_000.0 * quarter) as f32;
            let (sin, cos) = sin_cos_quarter(phi);
            let exact = f64::from(phi);
            assert!((f64::from(sin) - exact.sin()).abs() < 2.0 * f64::from(f32::EPSILON) * 0.71);
            assert!((f64::from(cos) - exact.cos()).abs() < 2.0 * f64::from(f32::EPSILON));
        }
    }

    /// The Box–Muller pair of two words computed in f64 with the standard library's functions,
    /// from the same u₁: an f32, whose spacing of 6 · 10⁻⁸ near 1 sets how finely radii below
    /// 10⁻³ are resolved.
    fn box_muller_f64(radius: u32, angle: u32) -> (f64, f64) {
        let unit = f64::from(radius as f32 / 4_294_967_296.0 + 0.5 / 4_294_967_296.0);
        let theta = std::f64::consts::TAU * f64::from(angle >> 8) / 16_777_216.0;
        let length = (-2.0 * unit.ln()).sqrt();
        (length * theta.cos(), length * theta.sin())
    }

    #[test]
    fn a_group_is_the_f64_box_muller_of_its_philox_words() {
        let (key, stream) = ([17, 4], [9, 0, 3]);
        for group in [0u32, 1, 77, 1 << 20] {
            let mut out = [0.0f32; GROUP];
            normal_group(key, stream, group, &mut out);
            for block in 0..BLOCKS {
                let counter = [group * BLOCKS as u32 + block as u32, 9, 0, 3];
                let words = philox4x32(counter, key);
                let pairs = [
                    (box_muller_f64(words[0], words[1]), block, block + 16),
                    (box_muller_f64(words[2], words[3]), block + 32, block + 48),
                ];
                for ((z0, z1), at0, at1) in pairs {
                    // f32 rounding of u₁ near 1 and of the polynomials: a few ulps of |z| ≤ 6.8.
                    assert!((f64::from(out[at0]) - z0).abs() < 4e-6, "{group} {at0}");
                    assert!((f64::from(out[at1]) - z1).abs() < 4e-6, "{group} {at1}");
                }
            }
        }
    }

    /// Φ(x) − Φ(−x), by the series erf(y) = 2/√π Σ (−1)ⁿ y^(2n+1) / (n! (2n+1)), y = x/√2.
    fn mass_within(x: f64) -> f64 {
        let y = x / std::f64::consts::SQRT_2;
        let (mut term, mut sum) = (y, 0.0);
        for n in 0..60 {
            sum += term / f64::from(2 * n + 1);
            term *= -y * y / f64::from(n + 1);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn draws_have_the_moments_and_tails_of_a_standard_normal() {
        let groups = 16_384u32; // 2²⁰ draws
        let count = f64::from(groups) * GROUP as f64;
        let (mut sum, mut squares, mut fourth, mut lagged) = (0.0, 0.0, 0.0, 0.0);
        let mut beyond = [0u64; 3];
        let mut previous = 0.0f64;
        let mut out = [0.0f32; GROUP];
        for group in 0..groups {
            normal_group([1, 2], [3, 4, 5], group, &mut out);
            for &z in &out {
                let z = f64::from(z);
                sum += z;
                squares += z * z;
                fourth += z.powi(4);
                lagged += z * previous;
                previous = z;
                for (sigmas, count) in beyond.iter_mut().enumerate() {
                    *count += u64::from(z.abs() > (sigmas + 1) as f64);
                }
            }
        }
        // Standard errors at n = 2²⁰: mean 1e-3, variance 1.4e-3, E z⁴ (= 3) 9.4e-3, lag-1 1e-3.
        assert!((sum / count).abs() < 5e-3);
        assert!((squares / count - 1.0).abs() < 7e-3);
        assert!((fourth / count - 3.0).abs() < 5e-2);
        assert!((lagged / count).abs() < 5e-3);
        for (sigmas, observed) in beyond.iter().enumerate() {
            let expected = 1.0 - mass_within((sigmas + 1) as f64);
            let observed = *observed as f64 / count;
            let standard_error = (expected * (1.0 - expected) / count).sqrt();
            assert!(
                (observed - expected).abs() < 5.0 * standard_error,
                "beyond {}σ: {observed} against {expected}",
                sigmas + 1
            );
        }
    }
}
