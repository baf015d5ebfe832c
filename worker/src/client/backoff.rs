//! Capped exponential back-off with jitter, so many workers retrying at once spread out.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    cap: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            initial,
            cap,
            current: initial,
        }
    }

    /// The next wait: the current delay with ±50 % jitter; the delay then doubles up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let jitter = rand::rng().random_range(0.5..1.5);
        let delay = self.current.mul_f64(jitter).min(self.cap);
        self.current = (self.current * 2).min(self.cap);
        delay
    }

    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_under_the_cap() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(150));
        assert!(delays.iter().all(|delay| *delay <= Duration::from_secs(1)));
        assert!(
            delays[9] >= Duration::from_millis(500),
            "capped delay keeps at least half the cap"
        );
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(150));
    }
}
