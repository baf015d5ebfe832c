//! Small statistics for research reports: confidence intervals for means over seeds, the
//! scaling exponent of a bound against width, and rank correlations between a generalization
//! measure and the observed gap.
//!
//! Everything here is a pure function over plain slices, with no dependency beyond `std`, so a
//! report can be recomputed from its CSV and checked by hand. The sample sizes in a sweep are
//! small (a handful of seeds per width), which is why intervals use Student's t rather than the
//! normal approximation, and why the rank correlations are the O(n²) textbook definitions
//! rather than the O(n log n) algorithms.

use serde::{Deserialize, Serialize};

/// A closed interval `[low, high]`, used for 95% two-sided confidence intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// The interval `centre ± half_width`.
    fn around(centre: f64, half_width: f64) -> Self {
        Self {
            low: centre - half_width,
            high: centre + half_width,
        }
    }
}

/// The mean of a set of runs (typically seeds) with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanInterval {
    /// How many finite values the summary is over; non-finite ones (diverged runs reported as
    /// NaN or infinity) are left out, and a reader needs to know how many remained.
    pub count: usize,
    pub mean: f64,
    /// Sample standard deviation (divisor n - 1); `None` for a single value, where the spread is
    /// unknown rather than zero.
    pub std_dev: Option<f64>,
    /// 95% two-sided Student-t confidence interval for the mean; `None` for a single value.
    pub interval: Option<Interval>,
}

/// Mean, sample standard deviation and 95% Student-t confidence interval of `values`.
///
/// Seeds per configuration are usually few (3–10), so the interval uses the t distribution with
/// n - 1 degrees of freedom: the normal 1.96 would understate the uncertainty by a factor of
/// up to 6.5 at n = 2. Non-finite values are skipped rather than poisoning the mean, because a
/// diverged run is recorded separately and should not turn a whole row into NaN. Returns `None`
/// when no finite value remains, since there is then nothing to summarize.
pub fn mean_interval(values: &[f64]) -> Option<MeanInterval> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let count = finite.len();
    if count == 0 {
        return None;
    }
    let n = count as f64;
    let mean = finite.iter().sum::<f64>() / n;
    if count < 2 {
        return Some(MeanInterval {
            count,
            mean,
            std_dev: None,
            interval: None,
        });
    }
    // Two-pass variance: the one-pass sum-of-squares formula loses all precision when the
    // values are large and close together (e.g. losses around 1e3 differing in the 6th digit).
    let sum_squares: f64 = finite.iter().map(|v| (v - mean) * (v - mean)).sum();
    // Equal values have no spread, though their mean, rounded, may differ from them in the last bit.
    let equal = finite.iter().all(|v| *v == finite[0]);
    let std_dev = if equal {
        0.0
    } else {
        (sum_squares / (n - 1.0)).sqrt()
    };
    let half_width = student_t_quantile_975(count - 1) * std_dev / n.sqrt();
    Some(MeanInterval {
        count,
        mean,
        std_dev: Some(std_dev),
        interval: Some(Interval::around(mean, half_width)),
    })
}

/// The 0.975 quantile of the standard normal distribution, the limit of the t quantile.
const Z_975: f64 = 1.959_963_984_540_054;

/// Exact 0.975 quantiles of Student's t for 1 to 30 degrees of freedom (index = df - 1).
const T_975_TABLE: [f64; 30] = [
    12.706_204_736_2,
    4.302_652_729_75,
    3.182_446_305_28,
    2.776_445_105_20,
    2.570_581_835_64,
    2.446_911_851_15,
    2.364_624_251_01,
    2.306_004_135_03,
    2.262_157_162_74,
    2.228_138_851_96,
    2.200_985_160_08,
    2.178_812_829_66,
    2.160_368_656_46,
    2.144_786_687_92,
    2.131_449_545_56,
    2.119_905_299_22,
    2.109_815_577_83,
    2.100_922_040_24,
    2.093_024_054_41,
    2.085_963_447_27,
    2.079_613_844_73,
    2.073_873_067_90,
    2.068_657_610_42,
    2.063_898_561_63,
    2.059_538_552_75,
    2.055_529_438_64,
    2.051_830_516_48,
    2.048_407_141_80,
    2.045_229_642_13,
    2.042_272_456_30,
];

/// The 0.975 quantile of Student's t with `degrees_of_freedom` degrees of freedom, i.e. the
/// multiplier of the standard error in a 95% two-sided confidence interval.
///
/// For 1 to 30 degrees of freedom, where the expansion below is least accurate and where small
/// sweeps live, the value comes from a table of exact quantiles. Beyond that it uses the
/// Cornish–Fisher expansion of the t quantile in powers of 1/ν around the normal quantile
/// z = 1.959963985 (Abramowitz & Stegun 26.7.5, terms up to 1/ν⁴). Its error is about 3e-8 at
/// ν = 30 and falls like 1/ν⁵, so for every ν > 30 it is below 1e-7 — far finer than any
/// interval in a report is read. Zero degrees of freedom has no finite quantile and returns
/// infinity, so an interval built from it is honestly unbounded rather than silently narrow.
pub fn student_t_quantile_975(degrees_of_freedom: usize) -> f64 {
    match degrees_of_freedom {
        0 => f64::INFINITY,
        df @ 1..=30 => T_975_TABLE[df - 1],
        df => {
            let nu = df as f64;
            let z = Z_975;
            let z2 = z * z;
            let z3 = z2 * z;
            let z5 = z3 * z2;
            let z7 = z5 * z2;
            let z9 = z7 * z2;
            let g1 = (z3 + z) / 4.0;
            let g2 = (5.0 * z5 + 16.0 * z3 + 3.0 * z) / 96.0;
            let g3 = (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / 384.0;
            let g4 = (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / 92160.0;
            z + g1 / nu + g2 / (nu * nu) + g3 / (nu * nu * nu) + g4 / (nu * nu * nu * nu)
        }
    }
}

/// A power-law fit `y ≈ exp(intercept) · x^slope`, from least squares in log–log space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Slope {
    /// The scaling exponent.
    pub slope: f64,
    /// The intercept of `ln y` at `ln x = 0`, i.e. the log of the prefactor.
    pub intercept: f64,
    /// 95% Student-t confidence interval for the exponent (n - 2 degrees of freedom); `None`
    /// with only two points, where the line fits exactly and the residual spread is unknown.
    pub interval: Option<Interval>,
    /// How many points were usable (both coordinates finite and positive).
    pub points: usize,
}

/// Ordinary least squares of `ln y` on `ln x`: the exponent with which a quantity (typically a
/// generalization bound) scales with another (typically width).
///
/// Whether a bound grows like width^0.5 or width^2 is the question a bound-versus-width study
/// asks, and a straight line in log–log space answers it with an exponent and an interval that
/// can be compared across bounds. Points with a non-positive or non-finite coordinate have no
/// logarithm and are dropped (a bound of 0 or a diverged run says nothing about scaling);
/// `points` reports how many remained. Returns `None` with fewer than two usable points or when
/// all usable x are equal, since no line is then determined.
pub fn log_log_slope(points: &[(f64, f64)]) -> Option<Slope> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    least_squares(&logs)
}

/// Ordinary least squares of `y` on `ln x`: `y ≈ intercept + slope · ln x`, the change of `y`
/// per e-fold of `x`. For a quantity that reaches zero or changes sign (a gap on an easy task, a
/// stay probability), which has no logarithm. Points with a non-finite coordinate or `x ≤ 0`
/// are dropped; `None` as for [`log_log_slope`].
pub fn semi_log_slope(points: &[(f64, f64)]) -> Option<Slope> {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0)
        .map(|(x, y)| (x.ln(), *y))
        .collect();
    least_squares(&logs)
}

/// The least-squares line through `(u, v)` points with its Student-t interval.
fn least_squares(logs: &[(f64, f64)]) -> Option<Slope> {
    let count = logs.len();
    if count < 2 {
        return None;
    }
    // Compare the logs directly: a mean of identical values can differ from them in the last
    // bit, which would make a zero spread look like a tiny positive one.
    let first_u = logs[0].0;
    if logs.iter().all(|&(u, _)| u == first_u) {
        return None;
    }
    let n = count as f64;
    let mean_u = logs.iter().map(|&(u, _)| u).sum::<f64>() / n;
    let mean_v = logs.iter().map(|&(_, v)| v).sum::<f64>() / n;
    let s_uu: f64 = logs.iter().map(|&(u, _)| (u - mean_u) * (u - mean_u)).sum();
    let s_uv: f64 = logs.iter().map(|&(u, v)| (u - mean_u) * (v - mean_v)).sum();
    let slope = s_uv / s_uu;
    let intercept = mean_v - slope * mean_u;
    let interval = if count < 3 {
        None
    } else {
        // Residuals summed directly (not S_vv - b·S_uv) so an exact fit gives a variance of
        // zero rather than a small negative number.
        let residual_squares: f64 = logs
            .iter()
            .map(|&(u, v)| {
                let residual = v - (intercept + slope * u);
                residual * residual
            })
            .sum();
        let residual_variance = residual_squares / (n - 2.0);
        let standard_error = (residual_variance / s_uu).sqrt();
        let half_width = student_t_quantile_975(count - 2) * standard_error;
        Some(Interval::around(slope, half_width))
    };
    Some(Slope {
        slope,
        intercept,
        interval,
        points: count,
    })
}

/// How the pairs of a sample order: counted once, read as τ-a or τ-b.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concordance {
    /// Pairs counted (NaN pairs left out).
    pub n: u64,
    pub concordant: u64,
    pub discordant: u64,
    /// Pairs tied in x, and in y (a pair tied in both is in each).
    pub tied_x: u64,
    pub tied_y: u64,
}

impl Concordance {
    /// n(n−1)/2, the number of unordered pairs.
    pub fn pairs(&self) -> u64 {
        self.n * self.n.saturating_sub(1) / 2
    }

    /// Kendall's τ-a, as Jiang et al. (2020, eq. 1) and `science.md` §5 define it:
    /// (1/(N(N−1))) Σ_{i≠j} sign(x_i − x_j) sign(y_i − y_j) = (C − D) / (N(N−1)/2). A tie in
    /// either coordinate contributes 0, so a constant measure or gap gives 0 rather than no
    /// value. None below two pairs.
    pub fn tau_a(&self) -> Option<f64> {
        let pairs = self.pairs();
        (pairs > 0).then(|| (self.concordant as f64 - self.discordant as f64) / pairs as f64)
    }

    /// Kendall's τ-b: (C − D) / √((n₀ − n₁)(n₀ − n₂)), n₁ and n₂ the pairs tied in x and in y,
    /// so that agreeing rankings with ties still reach ±1. None when either variable is
    /// constant.
    pub fn tau_b(&self) -> Option<f64> {
        let total = self.pairs();
        let (untied_x, untied_y) = (total - self.tied_x, total - self.tied_y);
        (untied_x > 0 && untied_y > 0).then(|| {
            (self.concordant as f64 - self.discordant as f64)
                / ((untied_x as f64) * (untied_y as f64)).sqrt()
        })
    }
}

/// The concordance counts of `pairs`. Pairs with a NaN coordinate are left out; infinities are
/// values (a vacuous bound is +∞, larger than every finite one, and tied with another +∞).
///
/// Counted by Knight's O(n log n) algorithm (J. Am. Stat. Assoc. 61, 1966), as in SciPy: sort by
/// (x, y), count the tied pairs, then count the exchanges a merge sort by y makes, which are the
/// discordant pairs. A sweep of 10^5 trials has 5·10^9 pairs, too many to count one by one.
pub fn concordance(pairs: &[(f64, f64)]) -> Concordance {
    let mut sorted: Vec<(f64, f64)> = pairs
        .iter()
        .copied()
        .filter(|(x, y)| !x.is_nan() && !y.is_nan())
        .collect();
    let n = sorted.len();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let tied_x = tied_pairs(&sorted, |a, b| a.0 == b.0);
    let tied_xy = tied_pairs(&sorted, |a, b| a.0 == b.0 && a.1 == b.1);
    let mut ys: Vec<f64> = sorted.iter().map(|pair| pair.1).collect();
    let mut scratch = vec![0.0; n];
    let discordant = merge_sort_exchanges(&mut ys, &mut scratch);
    let tied_y = tied_pairs(&ys, |a, b| a == b);
    let total = (n as u64) * (n as u64).saturating_sub(1) / 2;
    // Pairs tied in neither coordinate are concordant or discordant:
    // total − tied_x − tied_y + tied_xy of them.
    let concordant = (total + tied_xy - tied_x - tied_y) - discordant;
    Concordance {
        n: n as u64,
        concordant,
        discordant,
        tied_x,
        tied_y,
    }
}

/// Kendall's τ-a of `pairs` ([`Concordance::tau_a`]).
pub fn kendall_tau_a(pairs: &[(f64, f64)]) -> Option<f64> {
    concordance(pairs).tau_a()
}

/// Kendall's τ-b of `pairs` ([`Concordance::tau_b`]), beside τ-a, never for it: with the ties
/// of quantised 0-1 gaps the two differ.
pub fn kendall_tau_b(pairs: &[(f64, f64)]) -> Option<f64> {
    concordance(pairs).tau_b()
}

/// Pairs within runs of equal neighbours of a sorted slice: Σ k(k−1)/2 over runs of length k.
fn tied_pairs<T>(sorted: &[T], equal: impl Fn(&T, &T) -> bool) -> u64 {
    let mut pairs = 0;
    let mut run = 1u64;
    for window in sorted.windows(2) {
        if equal(&window[0], &window[1]) {
            run += 1;
        } else {
            pairs += run * (run - 1) / 2;
            run = 1;
        }
    }
    pairs + run * (run - 1) / 2
}

/// Sorts `values` ascending and returns how many pairs it found in strictly decreasing order:
/// equal values are never exchanged, so pairs tied in y are not counted as discordant.
fn merge_sort_exchanges(values: &mut [f64], scratch: &mut [f64]) -> u64 {
    let n = values.len();
    if n < 2 {
        return 0;
    }
    let middle = n / 2;
    let mut exchanges = {
        let (left, right) = values.split_at_mut(middle);
        let (left_scratch, right_scratch) = scratch.split_at_mut(middle);
        merge_sort_exchanges(left, left_scratch) + merge_sort_exchanges(right, right_scratch)
    };
    let (mut i, mut j, mut k) = (0, middle, 0);
    while i < middle && j < n {
        if values[j] < values[i] {
            // values[j] precedes every value still waiting on the left.
            exchanges += (middle - i) as u64;
            scratch[k] = values[j];
            j += 1;
        } else {
            scratch[k] = values[i];
            i += 1;
        }
        k += 1;
    }
    scratch[k..k + middle - i].copy_from_slice(&values[i..middle]);
    k += middle - i;
    scratch[k..k + n - j].copy_from_slice(&values[j..n]);
    values.copy_from_slice(&scratch[..n]);
    exchanges
}

/// A granulated coefficient ψ_i and how many groups it averages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Granulated {
    pub psi: f64,
    pub groups: usize,
}

/// The granulated Kendall coefficient ψ_i of Jiang et al. (2020), "Fantastic Generalization
/// Measures and Where to Find Them", eq. 3, for one hyperparameter axis i.
///
/// A plain τ over a whole grid can be high merely because a measure tracks some other
/// hyperparameter that also drives the gap. ψ_i isolates one axis: each group in `groups` holds
/// the (measure, gap) pairs of models that share every other setting and differ only along axis
/// i, and ψ_i is the mean of τ-a over *every* group of at least two models. A group whose gap
/// (or measure) is constant has τ-a = 0 and counts as 0, as in the paper; a group that is not
/// is never skipped. None when no group has two models.
pub fn granulated_kendall(groups: &[Vec<(f64, f64)>]) -> Option<Granulated> {
    let taus: Vec<f64> = groups
        .iter()
        .filter_map(|group| kendall_tau_a(group))
        .collect();
    (!taus.is_empty()).then(|| Granulated {
        psi: taus.iter().sum::<f64>() / taus.len() as f64,
        groups: taus.len(),
    })
}

/// Ψ of Jiang et al. (2020), eq. 4: the mean of ψ_i over the axes that have one.
pub fn overall_granulated(per_axis: &[Option<Granulated>]) -> Option<f64> {
    let psis: Vec<f64> = per_axis.iter().flatten().map(|axis| axis.psi).collect();
    (!psis.is_empty()).then(|| psis.iter().sum::<f64>() / psis.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    #[test]
    fn mean_interval_of_one_to_five() {
        // mean = 15 / 5 = 3; squared deviations 4 + 1 + 0 + 1 + 4 = 10, so the sample variance
        // is 10 / 4 = 2.5 and sd = sqrt(2.5) = 1.5811388. df = 4, t = 2.776445;
        // half-width = 2.776445 * 1.5811388 / sqrt(5) = 2.776445 * 0.7071068 = 1.963243.
        let summary = mean_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]).expect("finite values");
        assert_eq!(summary.count, 5);
        assert!(close(summary.mean, 3.0, 1e-12));
        let sd = summary.std_dev.expect("n >= 2");
        assert!(close(sd, 2.5_f64.sqrt(), 1e-12));
        let interval = summary.interval.expect("n >= 2");
        let half_width = 2.776 * 2.5_f64.sqrt() / 5_f64.sqrt();
        assert!(close(interval.low, 3.0 - half_width, 1e-3));
        assert!(close(interval.high, 3.0 + half_width, 1e-3));
        assert!(close(interval.high - 3.0, 1.963243, 1e-5));
    }

    #[test]
    fn mean_interval_skips_non_finite_and_handles_small_samples() {
        // Only 2.0 and 4.0 are finite: mean 3, variance ((1 + 1) / 1) = 2, sd = sqrt(2);
        // df = 1, t = 12.706205, half-width = 12.706205 * sqrt(2) / sqrt(2) = 12.706205.
        let summary =
            mean_interval(&[f64::NAN, 2.0, f64::INFINITY, 4.0, f64::NEG_INFINITY]).expect("two");
        assert_eq!(summary.count, 2);
        assert!(close(summary.mean, 3.0, 1e-12));
        assert!(close(summary.std_dev.expect("n = 2"), 2_f64.sqrt(), 1e-12));
        let interval = summary.interval.expect("n = 2");
        assert!(close(interval.low, 3.0 - 12.706205, 1e-5));
        assert!(close(interval.high, 3.0 + 12.706205, 1e-5));

        let single = mean_interval(&[7.5, f64::NAN]).expect("one finite value");
        assert_eq!(single.count, 1);
        assert_eq!(single.mean, 7.5);
        assert_eq!(single.std_dev, None);
        assert_eq!(single.interval, None);

        assert_eq!(mean_interval(&[]), None);
        assert_eq!(mean_interval(&[f64::NAN, f64::INFINITY]), None);

        // Three copies of 0.1: their float mean is not 0.1 exactly, their spread is still 0.
        let equal = mean_interval(&[0.1, 0.1, 0.1]).expect("three");
        assert_eq!(equal.std_dev, Some(0.0));
    }

    #[test]
    fn t_quantiles_match_textbook_values() {
        // Textbook 0.975 quantiles: df 1 -> 12.706, 10 -> 2.228, 30 -> 2.042,
        // 60 -> 2.000298, 120 -> 1.979930; the normal limit is 1.959964.
        assert!(close(student_t_quantile_975(1), 12.706, 1e-3));
        assert!(close(student_t_quantile_975(10), 2.228, 1e-3));
        assert!(close(student_t_quantile_975(30), 2.042, 1e-3));
        assert!(close(student_t_quantile_975(60), 2.000298, 1e-3));
        assert!(close(student_t_quantile_975(120), 1.979930, 1e-3));
        // The expansion is much better than the 1e-3 asked of it.
        assert!(close(student_t_quantile_975(60), 2.000297822, 1e-6));
        assert!(close(student_t_quantile_975(120), 1.979930405, 1e-6));
        assert!(close(student_t_quantile_975(1_000_000), 1.959964, 1e-5));
        assert_eq!(student_t_quantile_975(0), f64::INFINITY);
    }

    #[test]
    fn t_quantiles_decrease_across_the_table_boundary() {
        // The quantile falls monotonically in df; a jump at the switch from table to expansion
        // would show as an increase from 30 to 31.
        for df in 1..200 {
            assert!(
                student_t_quantile_975(df + 1) < student_t_quantile_975(df),
                "not decreasing at df = {df}"
            );
        }
    }

    #[test]
    fn log_log_slope_of_exact_power_law() {
        // y = 3 x^0.5 is ln y = ln 3 + 0.5 ln x exactly: slope 0.5, intercept ln 3 = 1.0986123,
        // zero residuals so the interval collapses onto 0.5.
        let points: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x.sqrt()))
            .collect();
        let fit = log_log_slope(&points).expect("five points");
        assert_eq!(fit.points, 5);
        assert!(close(fit.slope, 0.5, 1e-12));
        assert!(close(fit.intercept, 3_f64.ln(), 1e-12));
        let interval = fit.interval.expect("n >= 3");
        assert!(close(interval.low, 0.5, 1e-6));
        assert!(close(interval.high, 0.5, 1e-6));
    }

    #[test]
    fn log_log_slope_of_noisy_points() {
        // x = 1, e, e^2, e^3 and y = 1, e, e, e^2, so (u, v) = (ln x, ln y) =
        // (0,0), (1,1), (2,1), (3,2). mean u = 1.5, mean v = 1.
        // S_uu = 2.25 + 0.25 + 0.25 + 2.25 = 5; S_uv = 1.5 + 0 + 0 + 1.5 = 3.
        // slope = 3 / 5 = 0.6; intercept = 1 - 0.6 * 1.5 = 0.1.
        // fitted 0.1, 0.7, 1.3, 1.9; residuals -0.1, 0.3, -0.3, 0.1; SSE = 0.2.
        // s^2 = 0.2 / 2 = 0.1; se = sqrt(0.1 / 5) = 0.1414214; t(2) = 4.302653;
        // half-width = 0.6084870, interval [-0.0084870, 1.2084870].
        let e = std::f64::consts::E;
        let points = [(1.0, 1.0), (e, e), (e * e, e), (e * e * e, e * e)];
        let fit = log_log_slope(&points).expect("four points");
        assert_eq!(fit.points, 4);
        assert!(close(fit.slope, 0.6, 1e-12));
        assert!(close(fit.intercept, 0.1, 1e-12));
        let interval = fit.interval.expect("n >= 3");
        assert!(close(interval.low, -0.0084870, 1e-6));
        assert!(close(interval.high, 1.2084870, 1e-6));
    }

    #[test]
    fn log_log_slope_filters_and_degenerate_cases() {
        // Only (1, 1) and (e, e^2) survive the filter: slope (2 - 0) / (1 - 0) = 2, intercept 0,
        // and with two points there is no interval.
        let e = std::f64::consts::E;
        let points = [
            (1.0, 1.0),
            (0.0, 5.0),
            (-2.0, 5.0),
            (3.0, 0.0),
            (3.0, f64::NAN),
            (f64::INFINITY, 2.0),
            (e, e * e),
        ];
        let fit = log_log_slope(&points).expect("two usable points");
        assert_eq!(fit.points, 2);
        assert!(close(fit.slope, 2.0, 1e-12));
        assert!(close(fit.intercept, 0.0, 1e-12));
        assert_eq!(fit.interval, None);

        assert_eq!(log_log_slope(&[(2.0, 3.0)]), None);
        assert_eq!(log_log_slope(&[(0.1, 1.0), (0.1, 2.0), (0.1, 3.0)]), None);
        assert_eq!(log_log_slope(&[]), None);
    }

    #[test]
    fn semi_log_slope_of_a_logarithm() {
        // y = 0.2 − 0.05 ln x exactly: slope −0.05 per e-fold, intercept 0.2, through zero.
        let points: Vec<(f64, f64)> = [1.0, 4.0, 16.0, 64.0, 256.0]
            .iter()
            .map(|&x: &f64| (x, 0.2 - 0.05 * x.ln()))
            .collect();
        let fit = semi_log_slope(&points).expect("five points");
        assert!(close(fit.slope, -0.05, 1e-12));
        assert!(close(fit.intercept, 0.2, 1e-12));
        assert_eq!(fit.points, 5);
    }

    #[test]
    fn kendall_tau_b_without_ties() {
        // x = 1..5, y = 3, 1, 2, 5, 4. Of the 10 pairs the discordant ones are (1,2), (1,3)
        // [3 > 1, 3 > 2] and (4,5) [5 > 4]: 3 discordant, 7 concordant, no ties.
        // tau = (7 - 3) / 10 = 0.4.
        let pairs = [(1.0, 3.0), (2.0, 1.0), (3.0, 2.0), (4.0, 5.0), (5.0, 4.0)];
        assert!(close(kendall_tau_b(&pairs).expect("defined"), 0.4, 1e-12));
    }

    #[test]
    fn kendall_tau_b_with_ties() {
        // x = 1, 2, 2, 3, 4 and y = 1, 3, 2, 2, 1; n0 = 10 pairs (indices 1..5):
        // (1,2) dx+ dy+ C   (1,3) dx+ dy+ C   (1,4) dx+ dy+ C   (1,5) dx+ dy0 tied y
        // (2,3) dx0 tied x  (2,4) dx+ dy- D   (2,5) dx+ dy- D
        // (3,4) dx+ dy0 tied y                (3,5) dx+ dy- D
        // (4,5) dx+ dy- D
        // C = 3, D = 4, n1 (tied x) = 1, n2 (tied y) = 2.
        // tau_b = (3 - 4) / sqrt((10 - 1)(10 - 2)) = -1 / sqrt(72) = -0.1178511.
        let pairs = [(1.0, 1.0), (2.0, 3.0), (2.0, 2.0), (3.0, 2.0), (4.0, 1.0)];
        let tau = kendall_tau_b(&pairs).expect("defined");
        assert!(close(tau, -1.0 / 72_f64.sqrt(), 1e-12));
        assert!(close(tau, -0.1178511, 1e-7));

        // Ties that agree: x = 1, 2, 2, 3 and y = 10, 20, 20, 30. n0 = 6, the one pair tied in
        // x is also tied in y, the other 5 are concordant: tau_b = 5 / sqrt(5 * 5) = 1
        // (tau-a would give only 5 / 6).
        let agreeing = [(1.0, 10.0), (2.0, 20.0), (2.0, 20.0), (3.0, 30.0)];
        assert!(close(
            kendall_tau_b(&agreeing).expect("defined"),
            1.0,
            1e-12
        ));
    }

    #[test]
    fn kendall_tau_b_extremes_and_undefined_cases() {
        let increasing: Vec<(f64, f64)> = (0..8).map(|i| (i as f64, (i * i) as f64)).collect();
        assert!(close(
            kendall_tau_b(&increasing).expect("defined"),
            1.0,
            1e-12
        ));
        let reversed: Vec<(f64, f64)> = (0..8).map(|i| (i as f64, -(i as f64))).collect();
        assert!(close(
            kendall_tau_b(&reversed).expect("defined"),
            -1.0,
            1e-12
        ));

        // A NaN pair is skipped; +∞ is the largest value, leaving a perfect agreement.
        let with_nan = [
            (1.0, 1.0),
            (f64::NAN, 0.0),
            (2.0, 2.0),
            (3.0, f64::INFINITY),
        ];
        assert!(close(
            kendall_tau_b(&with_nan).expect("defined"),
            1.0,
            1e-12
        ));

        assert_eq!(kendall_tau_b(&[]), None);
        assert_eq!(kendall_tau_b(&[(1.0, 2.0)]), None);
        assert_eq!(kendall_tau_b(&[(1.0, 2.0), (1.0, 3.0), (1.0, 4.0)]), None);
        assert_eq!(kendall_tau_b(&[(1.0, 2.0), (2.0, 2.0), (3.0, 2.0)]), None);
    }

    #[test]
    fn granulated_kendall_averages_tau_a_over_every_group() {
        // Group A: perfect agreement, τ-a = 1. Group B: the 0.4 example above (no ties).
        // Group C: constant measure, τ-a = 0, counted. Group D: a single model, no group.
        // ψ = (1 + 0.4 + 0) / 3 = 0.4667.
        let groups = vec![
            vec![(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)],
            vec![(1.0, 3.0), (2.0, 1.0), (3.0, 2.0), (4.0, 5.0), (5.0, 4.0)],
            vec![(1.0, 5.0), (1.0, 6.0)],
            vec![(1.0, 1.0)],
        ];
        let granulated = granulated_kendall(&groups).expect("defined");
        assert_eq!(granulated.groups, 3);
        assert!(close(granulated.psi, 1.4 / 3.0, 1e-12));

        // Agreement in one group and reversal in the other cancel: (1 + -1) / 2 = 0.
        let opposite = vec![vec![(1.0, 1.0), (2.0, 2.0)], vec![(1.0, 2.0), (2.0, 1.0)]];
        assert!(close(
            granulated_kendall(&opposite).expect("defined").psi,
            0.0,
            1e-12
        ));

        assert_eq!(granulated_kendall(&[]), None);
        assert_eq!(granulated_kendall(&[vec![(1.0, 1.0)], vec![]]), None);

        // Ψ over axes: (0.5 + 0.1) / 2, an axis without groups left out.
        let per_axis = [
            Some(Granulated {
                psi: 0.5,
                groups: 2,
            }),
            None,
            Some(Granulated {
                psi: 0.1,
                groups: 7,
            }),
        ];
        assert!(close(overall_granulated(&per_axis).expect("Ψ"), 0.3, 1e-12));
        assert_eq!(overall_granulated(&[None]), None);
    }

    #[test]
    fn tau_a_with_ties_against_the_sum_over_ordered_pairs() {
        // x = 1, 2, 2, 3, 4 and y = 1, 3, 2, 2, 1 (the τ-b example): C = 3, D = 4 over the
        // 10 pairs, so τ-a = (3 − 4) / 10 = −0.1, where τ-b is −0.118.
        let pairs = [(1.0, 1.0), (2.0, 3.0), (2.0, 2.0), (3.0, 2.0), (4.0, 1.0)];
        assert!(close(kendall_tau_a(&pairs).expect("defined"), -0.1, 1e-12));
        // Ties that agree: τ-b reaches 1, τ-a only 5/6.
        let agreeing = [(1.0, 10.0), (2.0, 20.0), (2.0, 20.0), (3.0, 30.0)];
        assert!(close(
            kendall_tau_a(&agreeing).expect("defined"),
            5.0 / 6.0,
            1e-12
        ));
        // A constant gap: τ-a is 0 where τ-b has none.
        let constant = [(1.0, 0.5), (2.0, 0.5), (3.0, 0.5)];
        assert_eq!(kendall_tau_a(&constant), Some(0.0));
        assert_eq!(kendall_tau_b(&constant), None);
        assert_eq!(kendall_tau_a(&[(1.0, 1.0)]), None);
    }

    /// Concordant minus discordant over untied pairs, one pair at a time: the definition.
    fn tau_b_by_pairs(pairs: &[(f64, f64)]) -> Option<f64> {
        let n = pairs.len() as u64;
        let (mut concordant, mut discordant, mut tied_x, mut tied_y) = (0i64, 0i64, 0u64, 0u64);
        for (i, a) in pairs.iter().enumerate() {
            for b in &pairs[i + 1..] {
                // Signs by comparison, not subtraction: ∞ − ∞ is NaN, while +∞ ties +∞.
                let sign = |p: f64, q: f64| match q.partial_cmp(&p) {
                    Some(std::cmp::Ordering::Greater) => 1.0,
                    Some(std::cmp::Ordering::Less) => -1.0,
                    _ => 0.0,
                };
                let (dx, dy) = (sign(a.0, b.0), sign(a.1, b.1));
                tied_x += u64::from(dx == 0.0);
                tied_y += u64::from(dy == 0.0);
                if dx != 0.0 && dy != 0.0 {
                    if (dx > 0.0) == (dy > 0.0) {
                        concordant += 1;
                    } else {
                        discordant += 1;
                    }
                }
            }
        }
        let total = n * (n - 1) / 2;
        let (untied_x, untied_y) = (total - tied_x, total - tied_y);
        (untied_x > 0 && untied_y > 0).then(|| {
            (concordant - discordant) as f64 / ((untied_x as f64) * (untied_y as f64)).sqrt()
        })
    }

    /// (1/(N(N−1))) Σ_{i≠j} sign(x_i − x_j) sign(y_i − y_j): science.md §5's τ-a, term by term.
    fn tau_a_by_ordered_pairs(pairs: &[(f64, f64)]) -> f64 {
        let sign = |a: f64, b: f64| match a.partial_cmp(&b) {
            Some(std::cmp::Ordering::Greater) => 1.0,
            Some(std::cmp::Ordering::Less) => -1.0,
            _ => 0.0,
        };
        let n = pairs.len() as f64;
        let mut sum = 0.0;
        for (i, a) in pairs.iter().enumerate() {
            for (j, b) in pairs.iter().enumerate() {
                if i != j {
                    sum += sign(a.0, b.0) * sign(a.1, b.1);
                }
            }
        }
        sum / (n * (n - 1.0))
    }

    #[test]
    fn the_fast_count_agrees_with_the_pairwise_definition() {
        // Pseudo-random pairs with many ties (values on a coarse grid), from a fixed LCG.
        let mut state: u64 = 12345;
        let mut next = |levels: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % levels) as f64
        };
        for (n, levels) in [(2, 3), (7, 2), (50, 5), (300, 12), (1000, 1000)] {
            // Level 0 of x stands for a vacuous bound, +∞: the largest value, tied with itself.
            let pairs: Vec<(f64, f64)> = (0..n)
                .map(|_| {
                    let x = next(levels);
                    let x = if x == 0.0 && levels < 100 {
                        f64::INFINITY
                    } else {
                        x
                    };
                    (x, next(levels))
                })
                .collect();
            let fast_a = kendall_tau_a(&pairs).expect("n ≥ 2");
            let direct_a = tau_a_by_ordered_pairs(&pairs);
            assert!(
                (fast_a - direct_a).abs() < 1e-12,
                "n {n}: {fast_a} vs {direct_a}"
            );
            let fast = kendall_tau_b(&pairs);
            let direct = tau_b_by_pairs(&pairs);
            match (fast, direct) {
                (Some(fast), Some(direct)) => {
                    assert!((fast - direct).abs() < 1e-12, "n {n}: {fast} vs {direct}")
                }
                (fast, direct) => assert_eq!(fast, direct, "n {n}"),
            }
        }
    }
}
