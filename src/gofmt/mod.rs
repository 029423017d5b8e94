//! Go's text formats that Litestream's users see and script against, in one place: durations
//! (`time.ParseDuration`, `Duration.String()`), `strconv` parsing and `%q` quoting, and time
//! layouts (RFC 3339, slog timestamps).
//!
//! What must stay true: every function here is pure and byte-compatible with the Go function it
//! names (each file's tests hold Go's own outputs); nothing here knows about configuration,
//! commands or storage, so any layer may use it.

mod duration;
mod strconv;
mod time;

pub use duration::{
    format_go_duration, non_negative, parse_go_duration, parse_go_duration_nanos, round_lag,
};
pub use strconv::{IntError, go_quote, parse_go_bool, parse_go_hex_i32, parse_go_int};
pub use time::{log_time, parse_rfc3339, rfc3339_seconds};
