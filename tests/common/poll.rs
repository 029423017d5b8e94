//! The one poller of the integration suites: [`poll_until`] calls a check until it is ready or a
//! deadline passes.
//!
//! Must stay true: nothing waits for readiness by sleeping a fixed time; every wait is bounded and
//! its failure names what it waited for.

use std::time::{Duration, Instant};

/// Upper bound for anything a test waits for unless it says otherwise.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Poll period.
pub const POLL: Duration = Duration::from_millis(50);

/// What a check may return: `true`/`Some(v)` when ready.
pub trait Ready {
    type Value;
    fn ready(self) -> Option<Self::Value>;
}

impl Ready for bool {
    type Value = ();
    fn ready(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Ready for Option<T> {
    type Value = T;
    fn ready(self) -> Option<T> {
        self
    }
}

/// Calls `check` every [`POLL`] until it is ready and returns its value; panics with `what` once
/// `deadline` has passed.
pub fn poll_until<R: Ready>(deadline: Duration, what: &str, check: impl FnMut() -> R) -> R::Value {
    poll_within(deadline, check)
        .unwrap_or_else(|| panic!("timed out after {deadline:?} waiting for {what}"))
}

/// [`poll_until`] for a caller that words its own failure: `None` once `deadline` has passed.
pub fn poll_within<R: Ready>(deadline: Duration, mut check: impl FnMut() -> R) -> Option<R::Value> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().ready() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(POLL);
    }
}
