//! Upload pacing for one replica: at most one upload round per `sync-interval`, and an immediate
//! round when the interval has already passed (so commit→durable lag ≤ interval + upload time),
//! plus the backoff used while uploads keep failing.
//!
//! What must stay true: two rounds never start less than `interval` apart; a round is never delayed
//! when the previous one started at least `interval` ago; backoff grows exponentially to a cap and
//! resets on success.

use std::time::Duration;
use tokio::time::Instant;

/// Spaces upload rounds at least `interval` apart, measured between round starts.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    last: Option<Instant>,
}

impl RateLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// The earliest instant the next round may start (`None`: right away).
    pub fn next_allowed(&self) -> Option<Instant> {
        self.last.map(|l| l + self.interval)
    }

    /// Waits until a round may start, then records its start.
    pub async fn acquire(&mut self) {
        if let Some(at) = self.next_allowed() {
            tokio::time::sleep_until(at).await;
        }
        self.last = Some(Instant::now());
    }
}

/// Exponential backoff for a failure streak: `base · 2^(n−1)`, capped at `max`.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max,
            failures: 0,
        }
    }

    /// Records a failure; returns how long to wait and whether it starts a new streak.
    pub fn fail(&mut self) -> (Duration, bool) {
        self.failures = self.failures.saturating_add(1);
        let factor = 1u32 << (self.failures - 1).min(16);
        ((self.base * factor).min(self.max), self.failures == 1)
    }

    /// Ends the failure streak; returns how many failures it had.
    pub fn succeed(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn first_round_is_immediate() {
        let mut r = RateLimiter::new(I);
        let t0 = Instant::now();
        r.acquire().await;
        assert_eq!(Instant::now(), t0);
    }

    #[tokio::test(start_paused = true)]
    async fn second_round_waits_for_the_interval() {
        let mut r = RateLimiter::new(I);
        let t0 = Instant::now();
        r.acquire().await;
        tokio::time::advance(Duration::from_millis(300)).await;
        r.acquire().await;
        assert_eq!(Instant::now() - t0, I);
    }

    #[tokio::test(start_paused = true)]
    async fn round_after_a_long_idle_is_immediate() {
        let mut r = RateLimiter::new(I);
        r.acquire().await;
        tokio::time::advance(Duration::from_secs(5)).await;
        let t1 = Instant::now();
        r.acquire().await;
        assert_eq!(Instant::now(), t1);
        // ...and the one after it is paced from that round's start.
        r.acquire().await;
        assert_eq!(Instant::now() - t1, I);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_interval_never_waits() {
        let mut r = RateLimiter::new(Duration::ZERO);
        let t0 = Instant::now();
        for _ in 0..3 {
            r.acquire().await;
        }
        assert_eq!(Instant::now(), t0);
    }

    #[test]
    fn backoff_grows_caps_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(b.fail(), (Duration::from_secs(1), true));
        assert_eq!(b.fail(), (Duration::from_secs(2), false));
        assert_eq!(b.fail(), (Duration::from_secs(4), false));
        assert_eq!(b.fail(), (Duration::from_secs(8), false));
        assert_eq!(b.fail(), (Duration::from_secs(10), false));
        for _ in 0..100 {
            b.fail();
        }
        assert_eq!(b.fail().0, Duration::from_secs(10));
        assert_eq!(b.succeed(), 106);
        assert_eq!(b.fail(), (Duration::from_secs(1), true));
    }
}
