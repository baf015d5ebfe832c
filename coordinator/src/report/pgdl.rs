//! The conditional-mutual-information score of the NeurIPS 2020 competition "Predicting
//! Generalization in Deep Learning" (Jiang, Foret et al. 2020), computed as its public scoring
//! program does (`scoring_program/mutual_information.py` of the Codalab starting kit), so a
//! measure's score here reads beside the leaderboard's.
//!
//! Every ordered pair of models (i, j), i = j included, gives two binary variables: whether the
//! gap of i exceeds that of j, and whether the measure does (strict `>`, so a tie reads as "not
//! greater"). For each conditioning set of two distinct hyperparameters, pairs are grouped by the
//! ordered pair of values each model takes on each of the two; the score of the set is the mean
//! over groups of the plug-in mutual information between the two variables divided by the mean
//! over groups of the gap variable's entropy (bits, 1e-12 inside the entropy's logarithm, as in
//! the program). The score is the minimum over conditioning sets, × 100.
//!
//! Where we differ: a group with no pair (a grid that is not complete) is left out of both means,
//! where the program would return NaN; a conditioning set whose groups never vary in gap has no
//! score (the program divides by its 1e-12); and the program's models are one per grid point,
//! while a sweep's seeds are simply more models of the same point.

use std::collections::BTreeMap;

/// One model: the index of its value on each varied hyperparameter, its measure and its gap.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub values: Vec<usize>,
    pub measure: f64,
    pub gap: f64,
}

/// The score, 100 × min over pairs of distinct axes of I(gap sign; measure sign | cell) /
/// H(gap sign | cell). None with fewer than two varied axes (the program has no conditioning set
/// then) or fewer than two models.
pub fn conditional_mutual_information(models: &[Model], axes: usize) -> Option<f64> {
    if axes < 2 || models.len() < 2 {
        return None;
    }
    let mut best: Option<f64> = None;
    // The set {a, b} and {b, a} give the same groups, so each unordered pair once.
    for first in 0..axes {
        for second in first + 1..axes {
            if let Some(score) = score_of_set(models, first, second) {
                best = Some(best.map_or(score, |best: f64| best.min(score)));
            }
        }
    }
    best.map(|score| 100.0 * score)
}

/// [gap greater][measure greater] counts of ordered pairs, per group.
type Table = [[f64; 2]; 2];

fn score_of_set(models: &[Model], first: usize, second: usize) -> Option<f64> {
    let mut groups: BTreeMap<[usize; 4], Table> = BTreeMap::new();
    for i in models {
        for j in models {
            let key = [
                i.values[first],
                j.values[first],
                i.values[second],
                j.values[second],
            ];
            // Strict `>` as in the program: a tie (or an incomparable NaN) is "not greater".
            let greater = |a: f64, b: f64| a.partial_cmp(&b) == Some(std::cmp::Ordering::Greater);
            let gap = usize::from(!greater(i.gap, j.gap));
            let measure = usize::from(!greater(i.measure, j.measure));
            groups.entry(key).or_default()[gap][measure] += 1.0;
        }
    }
    let count = groups.len() as f64;
    let mutual: f64 = groups.values().map(mutual_information).sum::<f64>() / count;
    let entropy: f64 = groups
        .values()
        .map(|table| entropy(&[table[0][0] + table[0][1], table[1][0] + table[1][1]]))
        .sum::<f64>()
        / count;
    // Without a gap that differs within some group there is nothing to predict; the program
    // would divide by its 1e-12 and return a meaningless 0 or NaN.
    (entropy > 1e-9).then(|| mutual / entropy)
}

/// −Σ p log₂(p + 1e-12), the program's `entropy`.
fn entropy(counts: &[f64]) -> f64 {
    let total: f64 = counts.iter().sum();
    -counts
        .iter()
        .map(|count| {
            let p = count / total;
            p * (p + 1e-12).log2()
        })
        .sum::<f64>()
}

/// Σ p(a, b) log₂(p(a, b) / (p(a) p(b))) over non-empty cells, the program's `mi_from_table`.
fn mutual_information(table: &Table) -> f64 {
    let total: f64 = table.iter().flatten().sum();
    let rows = [table[0][0] + table[0][1], table[1][0] + table[1][1]];
    let columns = [table[0][0] + table[1][0], table[0][1] + table[1][1]];
    let mut information = 0.0;
    for (a, row) in table.iter().enumerate() {
        for (b, count) in row.iter().enumerate() {
            let joint = count / total;
            if joint == 0.0 {
                continue;
            }
            information += joint * (joint / ((rows[a] / total) * (columns[b] / total))).log2();
        }
    }
    information
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Axes a, b ∈ {0, 1}, `seeds` models per point, the gap rising with a and b and differing
    /// between seeds; the measure is `measure(gap, index)`.
    fn seeded(seeds: usize, measure: impl Fn(f64, usize) -> f64) -> Vec<Model> {
        let mut models = Vec::new();
        for a in 0..2 {
            for b in 0..2 {
                for seed in 0..seeds {
                    let gap = 0.1 * a as f64 + 0.01 * b as f64 + 0.001 * seed as f64;
                    let index = models.len();
                    models.push(Model {
                        values: vec![a, b],
                        measure: measure(gap, index),
                        gap,
                    });
                }
            }
        }
        models
    }

    #[test]
    fn the_gap_itself_scores_100_and_a_constant_0() {
        // The measure equals the gap: every pair's two signs agree, so in every group
        // I = H(gap sign) and the score is 100.
        let score = conditional_mutual_information(&seeded(2, |gap, _| gap), 2).expect("a score");
        assert!((score - 100.0).abs() < 1e-6, "{score}");
        let constant = conditional_mutual_information(&seeded(2, |_, _| 1.0), 2).expect("a score");
        assert!(constant.abs() < 1e-9, "{constant}");
        // One model per point: each group holds one pair, no gap varies, no score.
        assert_eq!(
            conditional_mutual_information(&seeded(1, |gap, _| gap), 2),
            None
        );
        assert_eq!(
            conditional_mutual_information(&seeded(2, |gap, _| gap), 1),
            None
        );
    }

    /// I(g; μ | U) / H(g | U) with U uniform over the groups, from joint entropies:
    /// I = H(g|U) + H(μ|U) − H(g, μ|U), each a mean of per-group entropies (no 1e-12).
    fn by_joint_entropies(models: &[Model]) -> f64 {
        let h = |counts: &[f64]| -> f64 {
            let total: f64 = counts.iter().sum();
            counts
                .iter()
                .filter(|count| **count > 0.0)
                .map(|count| -(count / total) * (count / total).log2())
                .sum()
        };
        let mut groups: BTreeMap<[usize; 4], [f64; 4]> = BTreeMap::new();
        for i in models {
            for j in models {
                let key = [i.values[0], j.values[0], i.values[1], j.values[1]];
                let cell = 2 * usize::from(i.gap > j.gap) + usize::from(i.measure > j.measure);
                groups.entry(key).or_default()[cell] += 1.0;
            }
        }
        let (mut information, mut gap_entropy) = (0.0, 0.0);
        for joint in groups.values() {
            let gap = [joint[0] + joint[1], joint[2] + joint[3]];
            let measure = [joint[0] + joint[2], joint[1] + joint[3]];
            information += h(&gap) + h(&measure) - h(joint);
            gap_entropy += h(&gap);
        }
        information / gap_entropy
    }

    #[test]
    fn a_noisy_measure_against_the_joint_entropy_form() {
        // The gap plus a deterministic perturbation that reorders some pairs.
        let models = seeded(3, |gap, index| gap + 0.004 * ((index * 7) % 5) as f64);
        let score = conditional_mutual_information(&models, 2).expect("a score");
        let expected = 100.0 * by_joint_entropies(&models);
        assert!(score > 1.0 && score < 99.0, "{score}");
        assert!((score - expected).abs() < 1e-6, "{score} vs {expected}");
    }

    /// A by-hand table: I and H of the 2 × 2 joint counts [[3, 1], [1, 3]].
    #[test]
    fn information_of_a_table_by_hand() {
        // p = [[3/8, 1/8], [1/8, 3/8]], marginals ½: I = 2·(3/8)·log₂(3/2) + 2·(1/8)·log₂(1/2)
        // = 0.75·0.5849625 − 0.25 = 0.1887219; H = 1 bit.
        let table = [[3.0, 1.0], [1.0, 3.0]];
        assert!((mutual_information(&table) - 0.188_721_9).abs() < 1e-7);
        assert!((entropy(&[4.0, 4.0]) - 1.0).abs() < 1e-9);
    }
}
