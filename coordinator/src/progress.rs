//! Showing a sweep's progress: a live bar (done/total, running, failed, rate, ETA) on a terminal,
//! plain log lines when the output is a file or a pipe (CI logs, `nohup`, Kubernetes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::SweepCounts;

/// With no terminal, a line at least this often while long trials run, besides one per change.
const QUIET_LINE_INTERVAL: Duration = Duration::from_secs(30);

/// How far back the rate behind the ETA looks: recent enough to follow a sweep whose trials get
/// longer with width, long enough not to jump with every finished trial.
const RATE_WINDOW: Duration = Duration::from_secs(60);

pub struct ProgressDisplay {
    sweep: String,
    started: Instant,
    terminal: bool,
    /// Drawn from the first update on, once the total is known.
    bar: Option<ProgressBar>,
    last_line: Option<(u64, Instant)>,
    /// (when, trials finished) samples within the rate window.
    samples: Vec<(Instant, u64)>,
}

impl ProgressDisplay {
    /// A bar when standard error is a terminal, log lines otherwise.
    pub fn new(sweep: &str) -> Self {
        Self {
            sweep: sweep.to_string(),
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            bar: None,
            last_line: None,
            samples: Vec::new(),
        }
    }

    fn bar(&mut self, total: u64) -> &ProgressBar {
        self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(self.sweep.clone());
            bar
        })
    }

    pub fn update(&mut self, counts: &SweepCounts) {
        let now = Instant::now();
        let finished = counts.finished();
        self.samples.push((now, finished));
        self.samples
            .retain(|(when, _)| now.duration_since(*when) <= RATE_WINDOW);
        let status = status_text(counts, self.rate());
        match self.terminal {
            true => {
                let bar = self.bar(counts.total);
                bar.set_length(counts.total);
                bar.set_position(finished);
                bar.set_message(status);
            }
            false => {
                let due = self.last_line.is_none_or(|(shown, at)| {
                    shown != finished || at.elapsed() >= QUIET_LINE_INTERVAL
                });
                if due {
                    eprintln!(
                        "[{:>6.0} s] {finished}/{} trials finished, {status}",
                        self.started.elapsed().as_secs_f64(),
                        counts.total
                    );
                    self.last_line = Some((finished, now));
                }
            }
        }
    }

    /// Trials finished per second over the rate window, once there is something to measure.
    fn rate(&self) -> Option<f64> {
        let (first_at, first) = self.samples.first()?;
        let (last_at, last) = self.samples.last()?;
        let seconds = last_at.duration_since(*first_at).as_secs_f64();
        (seconds > 0.0 && last > first).then(|| (last - first) as f64 / seconds)
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Running, failed and diverged trials, the rate and the time left at that rate.
pub fn status_text(counts: &SweepCounts, rate: Option<f64>) -> String {
    let mut text = format!(
        "{} running, {} failed, {} diverged",
        counts.leased, counts.failed, counts.diverged
    );
    if let Some(rate) = rate {
        let left = counts.total.saturating_sub(counts.finished()) as f64 / rate;
        text.push_str(&format!(", {rate:.2} trials/s"));
        if counts.finished() < counts.total {
            text.push_str(&format!(", about {} left", duration_text(left)));
        }
    }
    text
}

fn duration_text(seconds: f64) -> String {
    let seconds = seconds.round() as u64;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_says_what_runs_the_rate_and_the_time_left() {
        let counts = SweepCounts {
            total: 100,
            done: 38,
            failed: 2,
            leased: 4,
            diverged: 1,
            ..Default::default()
        };
        // 60 trials left at 0.5 trials/s: 120 s.
        assert_eq!(
            status_text(&counts, Some(0.5)),
            "4 running, 2 failed, 1 diverged, 0.50 trials/s, about 2 min 0 s left"
        );
        assert_eq!(
            status_text(&counts, None),
            "4 running, 2 failed, 1 diverged"
        );
        assert_eq!(duration_text(7300.0), "2 h 1 min");
    }
}
