//! The robust sign-error of a generalization measure, as Dziugaite, Drouin et al. (2020), "In
//! search of robust measures of generalization" (NeurIPS), define it and as their released code
//! (`nitarshan/robust-generalization-measures`, `experiments/coupled_networks`) computes it.
//!
//! An environment is an ordered pair of hyperparameter combinations that differ in exactly one
//! axis. Over every pair of runs from its two combinations (seed × seed), the sign-error says
//! whether the measure orders the two runs the way their gaps do; each pair is weighted by the
//! chance that its gap difference is not test-set noise (a Hoeffding bound on the test-set
//! size), and an environment with too little weight is left out. The mean over environments is
//! the average-case error, the maximum the robust (worst-case) one.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Environments whose effective sample size (Σw)²/Σw² is below this are left out, as in the
/// paper's runs (`min_ess = 12`).
pub const MIN_EFFECTIVE_SAMPLE_SIZE: f64 = 12.0;

/// Pairs whose Hoeffding weight is at most this are discarded, and the rest shifted down by it:
/// w' = (w − ½)₊, as the released code does.
const MIN_WEIGHT: f64 = 0.5;

/// The sign-error of a measure over a sweep's environments.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RobustSignError {
    /// Mean over the kept environments: 0 ranks every pair as its gap does, 1 reverses them all,
    /// 0.5 is chance.
    pub mean: f64,
    /// The largest environment's error: the robust (worst-case) measure of the paper.
    pub worst: f64,
    /// Ordered environments kept (each unordered pair of combinations counts twice, with the same
    /// error, as in the released code).
    pub environments: usize,
}

/// One finished run: which hyperparameter combination it is (seed left out), its measure and
/// its gap, and how many test examples the gap was measured on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub combination: usize,
    pub measure: f64,
    pub gap: f64,
    pub test_size: f64,
}

/// (1 − sign(c₁ − c₂)·sign(g₁ − g₂))/2: 0 when measure and gap order the pair alike, 1 when
/// opposite, ½ when either is tied. Signs come from comparison, so a vacuous +∞ measure ties
/// another +∞ and exceeds every finite value.
pub fn sign_error(c1: f64, c2: f64, g1: f64, g2: f64) -> f64 {
    let sign = |a: f64, b: f64| match a.partial_cmp(&b) {
        Some(Ordering::Greater) => 1.0,
        Some(Ordering::Less) => -1.0,
        _ => 0.0,
    };
    (1.0 - sign(c1, c2) * sign(g1, g2)) / 2.0
}

/// The probability, by Hoeffding's inequality on `test_size` test examples, that two gaps
/// `gap_difference` apart really differ: ((1 − 2·exp(−2n(Δ/2)²))₊)², the released code's
/// `hoeffding_weight` with no shift.
pub fn hoeffding_weight(gap_difference: f64, test_size: f64) -> f64 {
    let half = gap_difference.abs() / 2.0;
    let tail = 2.0 * (-2.0 * test_size * half * half).exp();
    (1.0 - tail).max(0.0).powi(2)
}

#[derive(Default)]
struct Environment {
    weight: f64,
    weight_squared: f64,
    loss: f64,
}

/// The robust sign-error of `runs`, where `differ_in_one(a, b)` says whether combinations `a`
/// and `b` differ in exactly one hyperparameter. None when no environment keeps enough weight.
/// The test-set size of a pair is the smaller of its two runs'.
pub fn robust_sign_error(
    runs: &[Run],
    differ_in_one: impl Fn(usize, usize) -> bool,
) -> Option<RobustSignError> {
    let mut environments: BTreeMap<(usize, usize), Environment> = BTreeMap::new();
    for first in runs {
        for second in runs {
            if !differ_in_one(first.combination, second.combination) {
                continue;
            }
            let test_size = first.test_size.min(second.test_size);
            let weight = hoeffding_weight(first.gap - second.gap, test_size);
            let weight = if weight > MIN_WEIGHT {
                weight - MIN_WEIGHT
            } else {
                0.0
            };
            let environment = environments
                .entry((first.combination, second.combination))
                .or_default();
            environment.weight += weight;
            environment.weight_squared += weight * weight;
            environment.loss +=
                weight * sign_error(first.measure, second.measure, first.gap, second.gap);
        }
    }
    let losses: Vec<f64> = environments
        .values()
        .filter(|environment| environment.weight > 0.0)
        .filter(|environment| {
            let effective = environment.weight.powi(2) / environment.weight_squared;
            // The released code keeps an environment at the threshold within isclose's tolerance.
            effective >= MIN_EFFECTIVE_SAMPLE_SIZE * (1.0 - 1e-9)
        })
        .map(|environment| environment.loss / environment.weight)
        .collect();
    if losses.is_empty() {
        return None;
    }
    Some(RobustSignError {
        mean: losses.iter().sum::<f64>() / losses.len() as f64,
        worst: losses.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        environments: losses.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_error_agrees_disagrees_and_ties() {
        assert_eq!(sign_error(2.0, 1.0, 0.3, 0.1), 0.0);
        assert_eq!(sign_error(1.0, 2.0, 0.3, 0.1), 1.0);
        assert_eq!(sign_error(1.0, 1.0, 0.3, 0.1), 0.5);
        assert_eq!(sign_error(f64::INFINITY, 2.0, 0.3, 0.1), 0.0);
        assert_eq!(sign_error(f64::INFINITY, f64::INFINITY, 0.3, 0.1), 0.5);
    }

    #[test]
    fn hoeffding_weight_by_hand() {
        // n = 10000, Δ = 0.02: 2·exp(−2·10⁴·10⁻⁴) = 2e⁻² = 0.270671; (1 − 0.2706706)² = 0.5319214.
        assert!((hoeffding_weight(0.02, 10_000.0) - 0.531_921_4).abs() < 1e-6);
        // A difference of zero is noise: weight 0. A large one is certain: weight → 1.
        assert_eq!(hoeffding_weight(0.0, 10_000.0), 0.0);
        assert!((hoeffding_weight(0.5, 10_000.0) - 1.0).abs() < 1e-12);
    }

    /// Two combinations (0, 1) that differ in one axis, `seeds` runs each.
    fn two_combinations(seeds: usize, measure: impl Fn(usize, usize) -> f64) -> Vec<Run> {
        (0..2)
            .flat_map(|combination| {
                let measure = &measure;
                (0..seeds).map(move |seed| Run {
                    combination,
                    measure: measure(combination, seed),
                    // Gaps far apart between combinations, so every cross pair has weight ≈ ½.
                    gap: 0.1 + 0.4 * combination as f64 + 0.001 * seed as f64,
                    test_size: 10_000.0,
                })
            })
            .collect()
    }

    #[test]
    fn a_measure_that_follows_the_gap_errs_nowhere_and_one_that_reverses_it_everywhere() {
        // 4 × 4 = 16 cross pairs of equal weight: effective sample size 16 ≥ 12.
        let differ = |a: usize, b: usize| a != b;
        let follows = two_combinations(4, |combination, _| combination as f64);
        let result = robust_sign_error(&follows, differ).expect("kept");
        assert_eq!(
            (result.mean, result.worst, result.environments),
            (0.0, 0.0, 2)
        );
        let reverses = two_combinations(4, |combination, _| -(combination as f64));
        let result = robust_sign_error(&reverses, differ).expect("kept");
        assert_eq!((result.mean, result.worst), (1.0, 1.0));
        // Three seeds: 9 pairs, effective sample size 9 < 12, so no environment is kept.
        assert_eq!(
            robust_sign_error(&two_combinations(3, |c, _| c as f64), differ),
            None
        );
    }

    #[test]
    fn the_environment_error_is_the_weighted_mean_of_its_pairs() {
        // Combination 1's measure is below combination 0's for seed 0 of combination 1 only: of
        // the 16 equally weighted cross pairs from 0 to 1, 4 disagree: error 4/16 = 0.25, the
        // same in both directions.
        let runs = two_combinations(4, |combination, seed| {
            if combination == 1 && seed == 0 {
                -1.0
            } else {
                combination as f64
            }
        });
        let result = robust_sign_error(&runs, |a, b| a != b).expect("kept");
        assert!((result.mean - 0.25).abs() < 1e-12, "{result:?}");
        assert!((result.worst - 0.25).abs() < 1e-12);
    }
}
