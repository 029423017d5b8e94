//! Log output in Litestream v0.3.13's formats (spec §7.5), fed by `tracing` events and by direct
//! calls from the command layer.
//!
//! What must stay true:
//! - before a config file is loaded, lines use Go's default logger on **stderr**:
//!   `2026/11/22 02:49:52 ERROR failed to run error="…"` (level INFO and up);
//! - after [`configure`], lines use Go slog's text handler (`time=2026-11-22T02:48:44.170Z
//!   level=INFO msg="…" k=v`) or JSON handler, on stdout (stderr with `logging.stderr`), filtered
//!   by `logging.level`; once [`force_stderr`] is called (a command whose stdout is a JSON
//!   document), every later line goes to stderr, even after a config file is loaded;
//! - values are quoted exactly when Go's text handler quotes them (empty, space, `=`, `"`,
//!   control characters) using Go's `%q` escapes; span fields (e.g. `db`, `replica`) come before
//!   the event's own fields, outermost span first;
//! - only events from this crate (`walstream…` targets) are printed: dependency chatter is not
//!   part of Litestream's output.

use std::io::Write;
use std::sync::{Once, RwLock};

use chrono::{DateTime, Local};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use crate::config::{LogLevel, LoggingConfig};
use crate::gofmt::go_quote;

/// Output style currently in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Go's default logger (before any config file is read).
    GoDefault,
    Text,
    Json,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    style: Style,
    min: LogLevel,
    stderr: bool,
    /// Set by [`force_stderr`]: `stderr` stays true whatever a config says.
    forced_stderr: bool,
}

static SETTINGS: RwLock<Settings> = RwLock::new(Settings {
    style: Style::GoDefault,
    min: LogLevel::Info,
    stderr: true,
    forced_stderr: false,
});

static INIT: Once = Once::new();

/// Installs the global `tracing` subscriber that prints through this module (idempotent).
pub fn init() {
    INIT.call_once(|| {
        // Another subscriber may already be installed (e.g. by a test harness); keep it.
        let _ = tracing_subscriber::registry().with(GoLogLayer).try_init();
    });
}

/// Switches to the configured format, level and stream (what Litestream does once its config
/// file is read).
pub fn configure(logging: &LoggingConfig) {
    let mut s = crate::rt::write(&SETTINGS);
    let forced_stderr = s.forced_stderr;
    *s = Settings {
        style: if logging.json {
            Style::Json
        } else {
            Style::Text
        },
        min: logging.level,
        stderr: logging.stderr || forced_stderr,
        forced_stderr,
    };
}

/// Sends log lines to stderr whatever the config says, now and after a later [`configure`]
/// (v0.5.17's `restore -json` and walstream's listing `-json` keep stdout for the JSON).
pub fn force_stderr() {
    let mut s = crate::rt::write(&SETTINGS);
    s.stderr = true;
    s.forced_stderr = true;
}

/// Writes one log line in the current format. `attrs` are printed in order after the message.
pub fn emit(level: LogLevel, msg: &str, attrs: &[(&str, LogValue)]) {
    let settings = *crate::rt::read(&SETTINGS);
    if rank(level) < rank(settings.min) {
        return;
    }
    let now = Local::now();
    let line = match settings.style {
        Style::GoDefault => go_default_line(now, level, msg, attrs),
        Style::Text => text_line(now, level, msg, attrs),
        Style::Json => json_line(now, level, msg, attrs),
    };
    // A failed write to a closed stdout/stderr has nowhere to be reported.
    let _ = if settings.stderr {
        std::io::stderr().lock().write_all(line.as_bytes())
    } else {
        std::io::stdout().lock().write_all(line.as_bytes())
    };
}

/// Logs `ERROR failed to run error=<message>` — how Litestream reports a failed command.
pub fn failed_to_run(err: &anyhow::Error) {
    emit(
        LogLevel::Error,
        "failed to run",
        &[("error", LogValue::Str(error_text(err)))],
    );
}

/// An error and its causes on one line (`context: cause: cause`), like anyhow's `{:#}` but
/// skipping a cause whose text the line already contains (many library errors print their source
/// in their own message, which would otherwise repeat).
pub fn error_text(err: &anyhow::Error) -> String {
    let mut chain = err.chain();
    let mut text = chain.next().map(|e| e.to_string()).unwrap_or_default();
    for cause in chain {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

/// A field value; numbers and bools stay unquoted in JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum LogValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl LogValue {
    fn text(&self) -> String {
        match self {
            LogValue::Str(s) => s.clone(),
            LogValue::I64(v) => v.to_string(),
            LogValue::U64(v) => v.to_string(),
            LogValue::F64(v) => v.to_string(),
            LogValue::Bool(v) => v.to_string(),
        }
    }

    fn json(&self) -> String {
        match self {
            LogValue::Str(s) => serde_json::Value::from(s.as_str()).to_string(),
            LogValue::F64(v) if !v.is_finite() => {
                serde_json::Value::from(v.to_string()).to_string()
            }
            other => other.text(),
        }
    }
}

fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Debug => 0,
        LogLevel::Info => 1,
        LogLevel::Warn => 2,
        LogLevel::Error => 3,
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

/// Go slog's text-handler rule for when a value needs quotes.
fn needs_quoting(s: &str) -> bool {
    s.is_empty()
        || s.chars().any(|c| {
            c == ' '
                || c == '='
                || c == '"'
                || c.is_control()
                || (!c.is_ascii() && c.is_whitespace())
        })
}

fn text_value(v: &LogValue) -> String {
    let s = v.text();
    if needs_quoting(&s) { go_quote(&s) } else { s }
}

fn attrs_text(attrs: &[(&str, LogValue)]) -> String {
    attrs
        .iter()
        .map(|(k, v)| format!(" {k}={}", text_value(v)))
        .collect()
}

fn go_default_line(
    now: DateTime<Local>,
    level: LogLevel,
    msg: &str,
    a: &[(&str, LogValue)],
) -> String {
    format!(
        "{} {} {msg}{}\n",
        now.format("%Y/%m/%d %H:%M:%S"),
        level_name(level),
        attrs_text(a)
    )
}

fn text_line(now: DateTime<Local>, level: LogLevel, msg: &str, a: &[(&str, LogValue)]) -> String {
    let msg = text_value(&LogValue::Str(msg.to_string()));
    format!(
        "time={} level={} msg={msg}{}\n",
        crate::gofmt::log_time(now, true),
        level_name(level),
        attrs_text(a)
    )
}

fn json_line(now: DateTime<Local>, level: LogLevel, msg: &str, a: &[(&str, LogValue)]) -> String {
    let mut out = format!(
        "{{\"time\":\"{}\",\"level\":\"{}\",\"msg\":{}",
        crate::gofmt::log_time(now, false),
        level_name(level),
        LogValue::Str(msg.to_string()).json()
    );
    for (k, v) in a {
        out.push_str(&format!(
            ",{}:{}",
            LogValue::Str(k.to_string()).json(),
            v.json()
        ));
    }
    out.push_str("}\n");
    out
}

/// The `tracing` layer that renders events with [`emit`].
struct GoLogLayer;

/// Fields recorded on a span, kept in its extensions.
struct SpanFields(Vec<(&'static str, LogValue)>);

impl<S> Layer<S> for GoLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    /// Only walstream's events are rendered (see `on_event`), so other crates' events are
    /// turned away before a record is built: the answer is cached per callsite, and crates
    /// logging through `log` (notify logs every inotify event at TRACE) are cut at the macro by
    /// the max level below. Spans all stay enabled (their fields go into events).
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        metadata.is_span() || metadata.target().starts_with("walstream")
    }

    /// walstream logs nothing below DEBUG (TRACE would print as DEBUG).
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut v = FieldCollector::default();
        attrs.record(&mut v);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(v.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !event.metadata().target().starts_with("walstream") {
            return;
        }
        let mut fields: Vec<(&'static str, LogValue)> = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.0.iter().cloned());
                }
            }
        }
        let mut v = FieldCollector::default();
        event.record(&mut v);
        fields.extend(v.fields);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let attrs: Vec<(&str, LogValue)> = fields.into_iter().collect();
        emit(level, &v.message, &attrs);
    }
}

#[derive(Default)]
struct FieldCollector {
    message: String,
    fields: Vec<(&'static str, LogValue)>,
}

impl FieldCollector {
    fn push(&mut self, field: &Field, value: LogValue) {
        if field.name() == "message" {
            self.message = value.text();
        } else {
            self.fields.push((field.name(), value));
        }
    }
}

impl Visit for FieldCollector {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, LogValue::Str(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, LogValue::Str(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, LogValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, LogValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, LogValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, LogValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // Go prints err.Error(), which includes wrapped causes: join the chain like `{:#}`.
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            text.push_str(&format!(": {s}"));
            source = s.source();
        }
        self.push(field, LogValue::Str(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Local> {
        let utc = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 2, 49, 52)
            .unwrap()
            + chrono::Duration::nanoseconds(170_500_000);
        utc.with_timezone(&Local)
    }

    fn err_attr(s: &str) -> Vec<(&'static str, LogValue)> {
        vec![("error", LogValue::Str(s.to_string()))]
    }

    #[test]
    fn go_default_format_quotes_like_go() {
        let line = go_default_line(at(), LogLevel::Error, "failed to run", &err_attr("a \"b\""));
        assert!(
            line.ends_with(" ERROR failed to run error=\"a \\\"b\\\"\"\n"),
            "{line}"
        );
        let re = regex::Regex::new(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} ERROR ").unwrap();
        assert!(re.is_match(&line), "{line}");
    }

    #[test]
    fn text_format_fields() {
        let line = text_line(
            at(),
            LogLevel::Info,
            "initialized db",
            &[
                ("path", LogValue::Str("/data/db".into())),
                ("n", LogValue::U64(3)),
                ("empty", LogValue::Str(String::new())),
                ("eq", LogValue::Str("a=b".into())),
            ],
        );
        let rest = line.split_once(' ').unwrap().1;
        assert_eq!(
            rest,
            "level=INFO msg=\"initialized db\" path=/data/db n=3 empty=\"\" eq=\"a=b\"\n"
        );
        assert!(line.starts_with("time="));
        let single = text_line(at(), LogLevel::Warn, "ok", &[]);
        assert!(single.ends_with(" level=WARN msg=ok\n"), "{single}");
    }

    #[test]
    fn json_format_keeps_types() {
        let line = json_line(
            at(),
            LogLevel::Error,
            "x",
            &[("n", LogValue::I64(-1)), ("s", LogValue::Str("q\"".into()))],
        );
        assert!(
            line.ends_with(",\"level\":\"ERROR\",\"msg\":\"x\",\"n\":-1,\"s\":\"q\\\"\"}\n"),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["n"], -1);
    }

    #[test]
    fn error_text_skips_repeated_causes() {
        #[derive(Debug, thiserror::Error)]
        #[error("list x: {0}")]
        struct Outer(#[source] std::io::Error);
        let io = std::io::Error::other("connection refused");
        let err = anyhow::Error::new(Outer(io)).context("cannot fetch generations");
        assert_eq!(
            error_text(&err),
            "cannot fetch generations: list x: connection refused"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&plain), "outer: inner");
    }

    #[test]
    fn quoting_rule() {
        assert!(needs_quoting(""));
        assert!(needs_quoting("a b"));
        assert!(needs_quoting("a\nb"));
        assert!(!needs_quoting("/data/x.db"));
        assert!(!needs_quoting("a\\b"));
        assert!(!needs_quoting("1m30s"));
    }
}
