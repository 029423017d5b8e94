//! Typed reading of one YAML mapping of the config, with Go `yaml.v2` conversions and the key path
//! used in error messages.
//!
//! Invariants: a null value counts as absent (Go leaves the field at its zero value / default);
//! every conversion error becomes a [`ConfigError::Invalid`] naming the file and the full key
//! path; unknown keys are reported once each as warnings, never as errors.

use serde_yaml::{Mapping, Value};

use super::ConfigError;
use crate::gofmt::parse_go_duration_nanos;

/// One mapping of the config file (top level, a database, a replica, `logging`, `age`).
pub(crate) struct Section<'v> {
    map: Option<&'v Mapping>,
    /// `config <file>` (or just `config`).
    pub origin: String,
    /// Error location of this mapping, e.g. `dbs[0] (/data/app.db): replicas[1] "s3"`.
    pub location: String,
    /// Whether child keys are joined with `.` (nested mappings) instead of `: `.
    dotted: bool,
}

/// Strips YAML tags (`!!str x`) so values are read by their content.
fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl<'v> Section<'v> {
    /// A section over `value`, which must be a mapping or null (null = empty).
    pub fn new(value: &'v Value, origin: &str, location: &str) -> Result<Self, ConfigError> {
        let map = match untag(value) {
            Value::Null => None,
            Value::Mapping(m) => Some(m),
            other => {
                return Err(ConfigError::Invalid {
                    origin: origin.to_string(),
                    location: location.to_string(),
                    message: format!("expected a mapping, found {}", kind(other)),
                });
            }
        };
        Ok(Section {
            map,
            origin: origin.to_string(),
            location: location.to_string(),
            dotted: false,
        })
    }

    /// The nested mapping under `key` (e.g. `logging`), absent → empty.
    pub fn child(&self, key: &str) -> Result<Section<'v>, ConfigError> {
        let mut s = match self.value(key) {
            Some(v) => Section::new(v, &self.origin, &self.key_path(key))?,
            None => Section {
                map: None,
                origin: self.origin.clone(),
                location: self.key_path(key),
                dotted: false,
            },
        };
        s.dotted = true;
        Ok(s)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_none_or(Mapping::is_empty)
    }

    pub fn key_path(&self, key: &str) -> String {
        match (self.location.is_empty(), self.dotted) {
            (true, _) => key.to_string(),
            (false, true) => format!("{}.{key}", self.location),
            (false, false) => format!("{}: {key}", self.location),
        }
    }

    /// An error about the value of `key`.
    pub fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            location: self.key_path(key),
            message: message.into(),
        }
    }

    /// An error about this mapping as a whole.
    pub fn err_here(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            location: self.location.clone(),
            message: message.into(),
        }
    }

    /// The value of `key`, `None` when absent or null.
    pub fn value(&self, key: &str) -> Option<&'v Value> {
        let v = untag(self.map?.get(key)?);
        (!v.is_null()).then_some(v)
    }

    /// A scalar as text; numbers and bools keep their written form like Go's string fields.
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(self.err(key, format!("expected a string, found {}", kind(other)))),
        }
    }

    /// A string where empty means "not set" (Go's zero value).
    pub fn non_empty(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.string(key)?.filter(|s| !s.is_empty()))
    }

    /// A bool: YAML `true`/`false` plus the YAML 1.1 words Go's yaml.v2 accepts unquoted
    /// (`yes/no/on/off/y/n`). A quoted `"true"` is rejected, as in Go.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => match s.as_str() {
                "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(Some(true)),
                "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(Some(false)),
                _ => Err(self.err(key, format!("invalid bool {s:?}"))),
            },
            Some(other) => Err(self.err(key, format!("invalid bool: found {}", kind(other)))),
        }
    }

    /// An integer (a quoted number is rejected, as in Go).
    pub fn int(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(self.err(key, format!("invalid integer {n}"))),
            },
            Some(Value::String(s)) => Err(self.err(key, format!("invalid integer {s:?}"))),
            Some(other) => Err(self.err(key, format!("invalid integer: found {}", kind(other)))),
        }
    }

    /// A Go duration string, or a plain integer meaning nanoseconds (yaml.v2 accepts both).
    /// Returns signed nanoseconds.
    pub fn duration(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => parse_go_duration_nanos(s)
                .map(Some)
                .map_err(|message| self.err(key, message)),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(self.err(key, format!("invalid duration {n}"))),
            },
            Some(other) => Err(self.err(key, format!("invalid duration: found {}", kind(other)))),
        }
    }

    /// The items of a list (absent or null → empty).
    pub fn seq(&self, key: &str) -> Result<Vec<&'v Value>, ConfigError> {
        match self.value(key) {
            None => Ok(Vec::new()),
            Some(Value::Sequence(items)) => Ok(items.iter().collect()),
            Some(other) => Err(self.err(key, format!("expected a list, found {}", kind(other)))),
        }
    }

    /// A list of strings; element errors name `key[i]`.
    pub fn string_list(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for (i, item) in self.seq(key)?.into_iter().enumerate() {
            match untag(item) {
                Value::String(s) => out.push(s.clone()),
                other => {
                    let msg = format!("expected a string, found {}", kind(other));
                    return Err(self.err(&format!("{key}[{i}]"), msg));
                }
            }
        }
        Ok(out)
    }

    /// A mapping of scalar values as text (`labels:`); absent or null → empty.
    pub fn string_map(
        &self,
        key: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, ConfigError> {
        let child = self.child(key)?;
        let mut out = std::collections::BTreeMap::new();
        for k in child.map.into_iter().flat_map(Mapping::keys) {
            let Value::String(name) = untag(k) else {
                return Err(self.err(key, format!("keys must be strings, found {}", kind(k))));
            };
            let value = child.string(name)?.unwrap_or_default();
            out.insert(name.clone(), value);
        }
        Ok(out)
    }

    /// Appends one warning per key not in `known`; `place` describes this mapping
    /// (e.g. `dbs[0].replicas[0] (db /data/app.db)`).
    pub fn warn_unknown(&self, known: &[&str], place: &str, warnings: &mut Vec<String>) {
        let Some(map) = self.map else { return };
        for key in map.keys() {
            let name = match untag(key) {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other)
                    .map(|s| s.trim_end().to_string())
                    .unwrap_or_else(|_| kind(other).to_string()),
            };
            if !known.contains(&name.as_str()) {
                warnings.push(format!("unknown key {name:?} {place}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(yaml: &str) -> (Value, &'static str) {
        (
            serde_yaml::from_str(yaml).expect("valid yaml"),
            "config t.yml",
        )
    }

    #[test]
    fn go_yaml_v2_conversions() {
        let (v, origin) = section(
            "s: 12\nf: 1.5\nb: yes\nq: \"true\"\nd: 5\nds: 1h\nn: ~\ni: \"7\"\nl: [a, 1]\n",
        );
        let s = Section::new(&v, origin, "loc").expect("mapping");
        assert_eq!(s.string("s").expect("s"), Some("12".into()));
        assert_eq!(s.string("f").expect("f"), Some("1.5".into()));
        assert_eq!(s.bool("b").expect("b"), Some(true));
        assert_eq!(
            s.bool("q").expect_err("quoted").to_string(),
            "config t.yml: loc: q: invalid bool \"true\""
        );
        assert_eq!(s.duration("d").expect("d"), Some(5));
        assert_eq!(s.duration("ds").expect("ds"), Some(3_600_000_000_000));
        assert_eq!(s.string("n").expect("null"), None);
        assert_eq!(s.string("absent").expect("absent"), None);
        assert_eq!(
            s.int("i").expect_err("quoted int").to_string(),
            "config t.yml: loc: i: invalid integer \"7\""
        );
        assert_eq!(
            s.string_list("l").expect_err("number in list").to_string(),
            "config t.yml: loc: l[1]: expected a string, found a number"
        );
    }

    #[test]
    fn nested_keys_are_dotted_and_unknown_keys_warned() {
        let (v, origin) = section("logging: {level: debug, colour: red}\n");
        let top = Section::new(&v, origin, "").expect("mapping");
        let logging = top.child("logging").expect("logging");
        assert_eq!(logging.key_path("type"), "logging.type");
        let mut warnings = Vec::new();
        logging.warn_unknown(&["level"], "in logging", &mut warnings);
        assert_eq!(
            warnings,
            vec!["unknown key \"colour\" in logging".to_string()]
        );
    }

    #[test]
    fn non_mapping_is_an_error() {
        let (v, origin) = section("- a\n- b\n");
        let err = Section::new(&v, origin, "dbs[0]")
            .err()
            .expect("list is not a mapping");
        assert_eq!(
            err.to_string(),
            "config t.yml: dbs[0]: expected a mapping, found a list"
        );
    }
}
