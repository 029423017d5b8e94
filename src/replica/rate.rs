//! Upload pacing for one replica: at most one upload round per `sync-interval`, and an immediate
//! round when the interval has already passed (so commit→durable lag ≤ interval + upload time).
//! The backoff used while uploads keep failing is [`crate::rt::Backoff`].
//!
//! What must stay true: two rounds never start less than `interval` apart; a round is never delayed
//! when the previous one started at least `interval` ago.

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
}
