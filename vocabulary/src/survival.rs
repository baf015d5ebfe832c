//! Exit times from a ball and their Kaplan–Meier survival curve across probe replicates and
//! seeds, with censoring at the end of a probe (science.md §3.2–3.3).

/// The first 1-based step t with d_t > r, or the trajectory length when the ball is never left
/// (then `censored`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExitTime {
    pub time: f64,
    pub censored: bool,
}

/// τ_r for one distance trajectory d_1, …, d_T (the same convention as
/// the probe summary of `science::measure::probe`).
pub fn exit_time(distances: &[f64], radius: f64) -> ExitTime {
    match distances.iter().position(|&distance| distance > radius) {
        Some(index) => ExitTime {
            time: (index + 1) as f64,
            censored: false,
        },
        None => ExitTime {
            time: distances.len() as f64,
            censored: true,
        },
    }
}

/// One step of the Kaplan–Meier curve, at a time where at least one exit happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurvivalStep {
    pub time: f64,
    /// Replicates still inside just before `time` (exit or censoring time ≥ `time`).
    pub at_risk: usize,
    pub exits: usize,
    /// Ŝ(t) = Π_{t_j ≤ t} (1 − exits_j / at_risk_j), constant until the next step.
    pub survival: f64,
    /// Greenwood: Ŝ(t) sqrt(Σ_{t_j ≤ t} exits_j / (at_risk_j (at_risk_j − exits_j))); 0 once
    /// every replicate at risk has exited and Ŝ = 0.
    pub standard_error: f64,
}

/// The Kaplan–Meier estimate from exit times (censored ones included): one step per distinct
/// exit time, ascending. A replicate censored at the same time as an exit counts as at risk at
/// that exit (the usual convention: censoring happens just after the exits of its time).
pub fn kaplan_meier(times: &[ExitTime]) -> Vec<SurvivalStep> {
    let mut sorted: Vec<ExitTime> = times.to_vec();
    sorted.sort_by(|a, b| a.time.total_cmp(&b.time));
    let mut steps = Vec::new();
    let mut survival = 1.0;
    let mut greenwood_sum = 0.0;
    let mut index = 0;
    while index < sorted.len() {
        let time = sorted[index].time;
        let at_risk = sorted.len() - index;
        let mut exits = 0;
        let mut tied = 0;
        while index + tied < sorted.len() && sorted[index + tied].time == time {
            exits += usize::from(!sorted[index + tied].censored);
            tied += 1;
        }
        index += tied;
        if exits == 0 {
            continue;
        }
        survival *= 1.0 - exits as f64 / at_risk as f64;
        let standard_error = if exits == at_risk {
            0.0
        } else {
            greenwood_sum += exits as f64 / (at_risk as f64 * (at_risk - exits) as f64);
            survival * greenwood_sum.sqrt()
        };
        steps.push(SurvivalStep {
            time,
            at_risk,
            exits,
            survival,
            standard_error,
        });
    }
    steps
}

/// The median survival time: the first step where Ŝ(t) ≤ 1/2, or None while more than half
/// remain (the median is then beyond the observation, only bounded below by the probe length).
pub fn median_survival_time(curve: &[SurvivalStep]) -> Option<f64> {
    curve
        .iter()
        .find(|step| step.survival <= 0.5)
        .map(|step| step.time)
}

/// Ŝ(t) read off a Kaplan–Meier curve: the survival of the last step at or before `time`, 1
/// before the first exit.
pub fn survival_at(curve: &[SurvivalStep], time: f64) -> f64 {
    curve
        .iter()
        .take_while(|step| step.time <= time)
        .last()
        .map_or(1.0, |step| step.survival)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time: f64) -> ExitTime {
        ExitTime {
            time,
            censored: false,
        }
    }

    fn censored(time: f64) -> ExitTime {
        ExitTime {
            time,
            censored: true,
        }
    }

    #[test]
    fn the_six_mp_arm_of_freireich_gives_the_textbook_curve() {
        // Remission times (weeks) of the 6-MP arm of the Freireich et al. (1963) leukaemia
        // trial, n = 21; the Kaplan–Meier table of every survival textbook (e.g. Klein and
        // Moeschberger, table 4.1A): 0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448, with
        // Greenwood standard errors 0.076, 0.087, 0.096, 0.107, 0.114, 0.128, 0.135.
        let mut times: Vec<ExitTime> = [6.0, 6.0, 6.0, 7.0, 10.0, 13.0, 16.0, 22.0, 23.0]
            .into_iter()
            .map(event)
            .collect();
        times.extend(
            [
                6.0, 9.0, 10.0, 11.0, 17.0, 19.0, 20.0, 25.0, 32.0, 32.0, 34.0, 35.0,
            ]
            .into_iter()
            .map(censored),
        );
        let curve = kaplan_meier(&times);
        let expected = [
            (6.0, 21, 3, 0.857, 0.076),
            (7.0, 17, 1, 0.807, 0.087),
            (10.0, 15, 1, 0.753, 0.096),
            (13.0, 12, 1, 0.690, 0.107),
            (16.0, 11, 1, 0.627, 0.114),
            (22.0, 7, 1, 0.538, 0.128),
            (23.0, 6, 1, 0.448, 0.135),
        ];
        assert_eq!(curve.len(), expected.len());
        for (step, (time, at_risk, exits, survival, error)) in curve.iter().zip(expected) {
            assert_eq!(
                (step.time, step.at_risk, step.exits),
                (time, at_risk, exits)
            );
            assert!((step.survival - survival).abs() < 5e-4, "{step:?}");
            assert!((step.standard_error - error).abs() < 5e-4, "{step:?}");
        }
        // Exact products: 18/21 · 16/17.
        assert!((curve[1].survival - 18.0 / 21.0 * 16.0 / 17.0).abs() < 1e-15);
        assert_eq!(survival_at(&curve, 5.0), 1.0);
        assert_eq!(survival_at(&curve, 9.0), curve[1].survival);
        assert_eq!(survival_at(&curve, 100.0), curve[6].survival);
        // The textbook median remission time of the 6-MP arm: 23 weeks (Ŝ first ≤ 1/2 there).
        assert_eq!(median_survival_time(&curve), Some(23.0));
    }

    #[test]
    fn exit_times_are_first_crossings_censored_at_the_end() {
        assert_eq!(exit_time(&[0.5, 1.5, 0.8], 1.0), event(2.0));
        assert_eq!(exit_time(&[0.5, 1.0, 0.8], 1.0), censored(3.0));
        // Without censoring the curve is the empirical survival function, ending at 0.
        let curve = kaplan_meier(&[event(2.0), event(1.0), event(2.0), event(4.0)]);
        let survivals: Vec<f64> = curve.iter().map(|step| step.survival).collect();
        assert_eq!(survivals, vec![0.75, 0.25, 0.0]);
        assert!(kaplan_meier(&[censored(5.0)]).is_empty());
        // Ŝ = 0.75 then 0.25: the median is the second exit time; none while three of four stay.
        assert_eq!(median_survival_time(&curve), Some(2.0));
        let mostly_censored = [event(3.0), censored(9.0), censored(9.0), censored(9.0)];
        assert_eq!(median_survival_time(&kaplan_meier(&mostly_censored)), None);
    }
}
