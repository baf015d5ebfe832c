//! How a measurement scales with width, fitted as what is defined: a log-log exponent over trials
//! when every value is positive, else over the per-width means when those are, else a semi-log
//! slope (change per e-fold of width) over trials. The fit says which it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::statistics::{self, Interval, Slope};

/// Which line a [`WidthSlope`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlopeFit {
    /// ln value on ln width over trials: value ∝ width^slope.
    LogLogTrials,
    /// ln(mean value per width) on ln width: some trial's value is ≤ 0, every width's mean > 0.
    LogLogWidthMeans,
    /// value on ln width over trials: the change per e-fold of width, where means reach 0.
    SemiLogTrials,
}

impl SlopeFit {
    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            SlopeFit::LogLogTrials => "log-log",
            SlopeFit::LogLogWidthMeans => "log-log of width means",
            SlopeFit::SemiLogTrials => "semi-log",
        }
    }
}

/// A fitted slope in width with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WidthSlope {
    pub slope: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// Points of the fit: trials, or widths for [`SlopeFit::LogLogWidthMeans`].
    pub trials: usize,
    #[serde(default = "default_fit")]
    pub fit: SlopeFit,
}

fn default_fit() -> SlopeFit {
    SlopeFit::LogLogTrials
}

/// The slope of `(width, value)` points; non-finite values (a vacuous bound) are not fitted.
/// None with fewer than two widths.
pub fn fit(points: &[(f64, f64)]) -> Option<WidthSlope> {
    let finite: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(width, value)| width.is_finite() && *width > 0.0 && value.is_finite())
        .collect();
    if finite.iter().all(|(_, value)| *value > 0.0) {
        return statistics::log_log_slope(&finite).map(|line| slope(line, SlopeFit::LogLogTrials));
    }
    // (width, sum, count) per width.
    let mut per_width: BTreeMap<u64, (f64, f64, f64)> = BTreeMap::new();
    for (width, value) in &finite {
        let entry = per_width
            .entry(width.to_bits())
            .or_insert((*width, 0.0, 0.0));
        entry.1 += value;
        entry.2 += 1.0;
    }
    let means: Vec<(f64, f64)> = per_width
        .values()
        .map(|(width, sum, count)| (*width, sum / count))
        .collect();
    if means.iter().all(|(_, mean)| *mean > 0.0) {
        return statistics::log_log_slope(&means)
            .map(|line| slope(line, SlopeFit::LogLogWidthMeans));
    }
    statistics::semi_log_slope(&finite).map(|line| slope(line, SlopeFit::SemiLogTrials))
}

fn slope(line: Slope, fit: SlopeFit) -> WidthSlope {
    let (low, high) = match line.interval {
        Some(Interval { low, high }) => (Some(low), Some(high)),
        None => (None, None),
    };
    WidthSlope {
        slope: line.slope,
        low,
        high,
        trials: line.points,
        fit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_values_are_fitted_in_log_log_over_trials() {
        // 5 · width^1.5, two trials per width: exponent 1.5.
        let points: Vec<(f64, f64)> = [16.0, 64.0, 256.0]
            .into_iter()
            .flat_map(|width: f64| [(width, 5.0 * width.powf(1.5)); 2])
            .collect();
        let line = fit(&points).expect("a slope");
        assert_eq!((line.fit, line.trials), (SlopeFit::LogLogTrials, 6));
        assert!((line.slope - 1.5).abs() < 1e-12);
    }

    #[test]
    fn a_gap_at_or_below_zero_falls_back_to_width_means_then_to_semi_log() {
        // Width 8: gaps −0.01 and 0.05 (mean 0.02); width 32: 0.02 and 0.06 (mean 0.04):
        // means double over a factor 4 of width, exponent ln 2 / ln 4 = 0.5.
        let points = [(8.0, -0.01), (8.0, 0.05), (32.0, 0.02), (32.0, 0.06)];
        let line = fit(&points).expect("a slope");
        assert_eq!((line.fit, line.trials), (SlopeFit::LogLogWidthMeans, 2));
        assert!((line.slope - 0.5).abs() < 1e-12);
        // Means 0.02 and −0.01: no logarithm; the trials' values on ln width instead.
        // Points (ln 8, −0.01), (ln 8, 0.05), (ln 32, −0.03), (ln 32, 0.01): slope
        // (mean at 32 − mean at 8) / ln 4 = (−0.01 − 0.02) / ln 4.
        let points = [(8.0, -0.01), (8.0, 0.05), (32.0, -0.03), (32.0, 0.01)];
        let line = fit(&points).expect("a slope");
        assert_eq!((line.fit, line.trials), (SlopeFit::SemiLogTrials, 4));
        assert!((line.slope - (-0.03 / 4f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn vacuous_values_are_not_fitted() {
        let points = [(8.0, 1.0), (16.0, f64::INFINITY), (32.0, 4.0)];
        let line = fit(&points).expect("a slope");
        assert_eq!(line.trials, 2);
        assert!((line.slope - 1.0).abs() < 1e-12);
        assert_eq!(fit(&[(8.0, 1.0), (8.0, 2.0)]), None);
    }
}
