//! How far and how the probe spreads from Θ̂ (science.md §3.1 and §3.5): the mean and RMS of the
//! distances d_t, and the mean-squared displacement MSD(t) = mean over replicates of d_t², whose
//! late-half least-squares fit a + 2·D_eff·t gives the diffusion coefficient D_eff (≈ 0 when the
//! iterates are confined, positive when they diffuse along flat directions).

/// Mean and root-mean-square of every d_t of every replicate; NaN without steps.
pub fn distance_moments(trajectories: &[Vec<f64>]) -> (f64, f64) {
    let count = trajectories.iter().map(Vec::len).sum::<usize>() as f64;
    let sum: f64 = trajectories.iter().flatten().sum();
    let squares: f64 = trajectories.iter().flatten().map(|d| d * d).sum();
    if count == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    (sum / count, (squares / count).sqrt())
}

/// D_eff of the fit MSD(t) ≈ a + 2·D_eff·t over steps t = ⌈T/2⌉ … T (1-based, as d_t is
/// recorded after step t); NaN with fewer than two steps in that half.
pub fn msd_diffusion(trajectories: &[Vec<f64>]) -> f64 {
    let squared: Vec<Vec<f64>> = trajectories
        .iter()
        .map(|trajectory| trajectory.iter().map(|d| d * d).collect())
        .collect();
    late_diffusion(&mean_squared_displacement(&squared))
}

/// MSD(t) = the mean over replicates of their squared displacements at step t (index t − 1),
/// over the steps every replicate has.
pub fn mean_squared_displacement(squared_displacements: &[Vec<f64>]) -> Vec<f64> {
    let steps = squared_displacements
        .iter()
        .map(Vec::len)
        .min()
        .unwrap_or(0);
    let replicates = squared_displacements.len() as f64;
    (0..steps)
        .map(|index| {
            squared_displacements
                .iter()
                .map(|replicate| replicate[index])
                .sum::<f64>()
                / replicates
        })
        .collect()
}

/// D_eff of the least-squares fit msd[t − 1] ≈ a + 2·D_eff·t over the late half of the steps;
/// NaN with fewer than two steps in that half.
pub fn late_diffusion(msd: &[f64]) -> f64 {
    let first = msd.len() / 2;
    if msd.len() - first < 2 {
        return f64::NAN;
    }
    let points: Vec<(f64, f64)> = (first..msd.len())
        .map(|index| ((index + 1) as f64, msd[index]))
        .collect();
    let count = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / count;
    let mean_msd = points.iter().map(|p| p.1).sum::<f64>() / count;
    let covariance: f64 = points
        .iter()
        .map(|(t, msd)| (t - mean_t) * (msd - mean_msd))
        .sum();
    let variance: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    covariance / variance / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_of_a_hand_made_trajectory() {
        let (mean, rms) = distance_moments(&[vec![3.0, 4.0], vec![0.0, 0.0]]);
        assert!((mean - 7.0 / 4.0).abs() < 1e-12);
        assert!((rms - (25.0f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!(distance_moments(&[]).0.is_nan());
    }

    #[test]
    fn a_linear_msd_gives_its_diffusion_coefficient() {
        // Two replicates whose squared distances average to 0.5 + 2·0.25·t exactly, with an
        // early transient (ignored: only the late half is fitted).
        let steps = 40;
        let make = |offset: f64| -> Vec<f64> {
            (1..=steps)
                .map(|t| {
                    let msd = if t <= 20 { 100.0 } else { 0.5 + 0.5 * t as f64 };
                    (msd + offset).sqrt()
                })
                .collect()
        };
        let diffusion = msd_diffusion(&[make(0.3), make(-0.3)]);
        assert!((diffusion - 0.25).abs() < 1e-9, "{diffusion}");
    }

    #[test]
    fn a_confined_cloud_has_no_diffusion() {
        let confined: Vec<f64> = (0..50).map(|t| 1.0 + 0.01 * f64::from(t % 2)).collect();
        assert!(msd_diffusion(&[confined]).abs() < 1e-3);
        assert!(msd_diffusion(&[vec![1.0, 2.0]]).is_nan());
    }
}
