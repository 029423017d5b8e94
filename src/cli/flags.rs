//! A small command-line flag parser with the exact syntax and error wording of Go's `flag`
//! package, which Litestream v0.3.13 uses (users script against it, so clap-style parsing would
//! break them).
//!
//! What must stay true (each checked against the real `litestream` binary):
//! - accepted forms: `-name value`, `-name=value`, `--name`, `--name=value`; bool flags take no
//!   separate value (`-name`, `-name=true|false|1|0|t|f|…`);
//! - parsing stops at the first non-flag argument (`-` alone counts as one) or after `--`;
//! - `-h`/`-help` (when not defined) ask for usage ([`FlagError::Help`]);
//! - error texts: `flag provided but not defined: -v`, `flag needs an argument: -o`,
//!   `bad flag syntax: ---o`, `invalid boolean value "maybe" for -x: parse error`,
//!   `invalid value "x" for flag -n: parse error` / `value out of range`, and for custom flags
//!   `invalid value "zz" for flag -index: <custom message>`;
//! - repeating a flag keeps the last value, except a repeatable flag ([`FlagSet::strings`], like
//!   a Go `flag.Value` whose `Set` appends), which collects every value in order.

use std::collections::HashMap;

use crate::gofmt::{go_quote, parse_go_bool, parse_go_int};

/// Validator for a custom flag: `Err(msg)` becomes `invalid value "<v>" for flag -<name>: <msg>`.
pub type CustomParse = fn(&str) -> Result<(), String>;

#[derive(Debug, Clone, Copy)]
enum Kind {
    String,
    Bool,
    Int,
    Custom(CustomParse),
    Strings,
}

/// A parsed flag value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    List(Vec<String>),
}

/// Why parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// `-h` or `-help` was given: print usage, exit 1, no error line.
    #[error("flag: help requested")]
    Help,
    /// A syntax or value error, worded exactly like Go's `flag` package.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
struct Def {
    name: &'static str,
    kind: Kind,
    default: Value,
}

/// The flags one command accepts.
#[derive(Debug, Clone, Default)]
pub struct FlagSet {
    defs: Vec<Def>,
}

/// Result of a successful parse: flag values (defaults filled in) and the remaining arguments.
#[derive(Debug, Clone)]
pub struct Parsed {
    values: HashMap<&'static str, Value>,
    set: Vec<&'static str>,
    /// Positional arguments left after the flags.
    pub args: Vec<String>,
}

impl FlagSet {
    pub fn new() -> Self {
        Self::default()
    }

    fn define(&mut self, name: &'static str, kind: Kind, default: Value) -> &mut Self {
        self.defs.push(Def {
            name,
            kind,
            default,
        });
        self
    }

    pub fn string(&mut self, name: &'static str, default: &str) -> &mut Self {
        self.define(name, Kind::String, Value::Str(default.to_string()))
    }

    pub fn bool(&mut self, name: &'static str, default: bool) -> &mut Self {
        self.define(name, Kind::Bool, Value::Bool(default))
    }

    pub fn int(&mut self, name: &'static str, default: i64) -> &mut Self {
        self.define(name, Kind::Int, Value::Int(default))
    }

    /// A repeatable string flag: every occurrence is kept, in order (default: none).
    pub fn strings(&mut self, name: &'static str) -> &mut Self {
        self.define(name, Kind::Strings, Value::List(Vec::new()))
    }

    /// A string flag whose value is checked by `parse` (like a Go `flag.Value` with its own `Set`).
    pub fn custom(&mut self, name: &'static str, default: &str, parse: CustomParse) -> &mut Self {
        self.define(name, Kind::Custom(parse), Value::Str(default.to_string()))
    }

    fn def(&self, name: &str) -> Option<&Def> {
        self.defs.iter().find(|d| d.name == name)
    }

    /// Parses `args` (without the command name) the way Go's `FlagSet.Parse` does.
    pub fn parse(&self, args: &[String]) -> Result<Parsed, FlagError> {
        let mut parsed = Parsed {
            values: self
                .defs
                .iter()
                .map(|d| (d.name, d.default.clone()))
                .collect(),
            set: Vec::new(),
            args: Vec::new(),
        };
        let mut rest = args;
        loop {
            match self.parse_one(rest, &mut parsed)? {
                Step::Consumed(n) => rest = &rest[n..],
                Step::Stop(n) => {
                    parsed.args = rest[n..].to_vec();
                    return Ok(parsed);
                }
            }
        }
    }

    /// One step of Go's `parseOne`: how many arguments were consumed, or where flags stop.
    fn parse_one(&self, args: &[String], parsed: &mut Parsed) -> Result<Step, FlagError> {
        let Some(s) = args.first() else {
            return Ok(Step::Stop(0));
        };
        let bytes = s.as_bytes();
        if bytes.len() < 2 || bytes[0] != b'-' {
            return Ok(Step::Stop(0));
        }
        let mut minuses = 1;
        if bytes[1] == b'-' {
            minuses = 2;
            if bytes.len() == 2 {
                return Ok(Step::Stop(1)); // "--" ends the flags and is dropped
            }
        }
        let body = &s[minuses..];
        if body.starts_with('-') || body.starts_with('=') {
            return Err(FlagError::Invalid(format!("bad flag syntax: {s}")));
        }
        // An '=' after the first character separates the value.
        let (name, inline) = match body[1..].find('=') {
            Some(i) => (&body[..i + 1], Some(&body[i + 2..])),
            None => (body, None),
        };
        let Some(def) = self.def(name) else {
            if name == "help" || name == "h" {
                return Err(FlagError::Help);
            }
            return Err(FlagError::Invalid(format!(
                "flag provided but not defined: -{name}"
            )));
        };
        let (value, consumed) = match (def.kind, inline) {
            (Kind::Bool, v) => (v.unwrap_or("true"), 1),
            (_, Some(v)) => (v, 1),
            (_, None) => match args.get(1) {
                Some(v) => (v.as_str(), 2),
                None => {
                    return Err(FlagError::Invalid(format!(
                        "flag needs an argument: -{name}"
                    )));
                }
            },
        };
        match (convert(def, value)?, parsed.values.get_mut(def.name)) {
            (Value::List(new), Some(Value::List(all))) => all.extend(new),
            (v, _) => {
                parsed.values.insert(def.name, v);
            }
        }
        if !parsed.set.contains(&def.name) {
            parsed.set.push(def.name);
        }
        Ok(Step::Consumed(consumed))
    }
}

enum Step {
    Consumed(usize),
    Stop(usize),
}

/// Converts a raw value for `def`, with Go's error wording.
fn convert(def: &Def, value: &str) -> Result<Value, FlagError> {
    let name = def.name;
    match def.kind {
        Kind::String => Ok(Value::Str(value.to_string())),
        Kind::Strings => Ok(Value::List(vec![value.to_string()])),
        Kind::Bool => parse_go_bool(value).map(Value::Bool).ok_or_else(|| {
            FlagError::Invalid(format!(
                "invalid boolean value {} for -{name}: parse error",
                go_quote(value)
            ))
        }),
        Kind::Int => parse_go_int(value).map(Value::Int).map_err(|e| {
            FlagError::Invalid(format!(
                "invalid value {} for flag -{name}: {e}",
                go_quote(value)
            ))
        }),
        Kind::Custom(check) => match check(value) {
            Ok(()) => Ok(Value::Str(value.to_string())),
            Err(msg) => Err(FlagError::Invalid(format!(
                "invalid value {} for flag -{name}: {msg}",
                go_quote(value)
            ))),
        },
    }
}

impl Parsed {
    /// Value of a string or custom flag. Panics only on a programming error (undefined name or
    /// wrong kind), never on user input.
    pub fn str(&self, name: &str) -> &str {
        match self.values.get(name) {
            Some(Value::Str(s)) => s,
            other => panic!("flag -{name} is not a defined string flag: {other:?}"),
        }
    }

    /// Every value of a repeatable flag, in order (programming errors panic, as for
    /// [`Parsed::str`]).
    pub fn strings(&self, name: &str) -> &[String] {
        match self.values.get(name) {
            Some(Value::List(v)) => v,
            other => panic!("flag -{name} is not a defined repeatable flag: {other:?}"),
        }
    }

    /// Value of a bool flag (programming errors panic, as for [`Parsed::str`]).
    pub fn bool(&self, name: &str) -> bool {
        match self.values.get(name) {
            Some(Value::Bool(b)) => *b,
            other => panic!("flag -{name} is not a defined bool flag: {other:?}"),
        }
    }

    /// Value of an int flag (programming errors panic, as for [`Parsed::str`]).
    pub fn int(&self, name: &str) -> i64 {
        match self.values.get(name) {
            Some(Value::Int(i)) => *i,
            other => panic!("flag -{name} is not a defined int flag: {other:?}"),
        }
    }

    /// Whether the flag appeared on the command line (Go's `FlagSet.Visit`).
    pub fn is_set(&self, name: &str) -> bool {
        self.set.contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> FlagSet {
        let mut fs = FlagSet::new();
        fs.string("config", "")
            .bool("no-expand-env", false)
            .int("parallelism", 8)
            .custom("index", "", |v| {
                u32::from_str_radix(v, 16)
                    .map(|_| ())
                    .map_err(|_| "invalid hexadecimal format".to_string())
            });
        fs
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn err(a: &[&str]) -> String {
        match set().parse(&args(a)) {
            Err(FlagError::Invalid(m)) => m,
            other => panic!("expected error for {a:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_all_go_spellings() {
        for a in [
            &["-config", "c.yml", "db"][..],
            &["-config=c.yml", "db"],
            &["--config", "c.yml", "db"],
            &["--config=c.yml", "db"],
        ] {
            let p = set().parse(&args(a)).unwrap();
            assert_eq!(p.str("config"), "c.yml", "{a:?}");
            assert!(p.is_set("config"));
            assert_eq!(p.args, vec!["db"]);
        }
    }

    #[test]
    fn bool_flags_take_no_separate_value() {
        let p = set().parse(&args(&["-no-expand-env", "false"])).unwrap();
        assert!(p.bool("no-expand-env"));
        assert_eq!(p.args, vec!["false"]);
        let p = set().parse(&args(&["--no-expand-env=0", "x"])).unwrap();
        assert!(!p.bool("no-expand-env"));
        assert!(p.is_set("no-expand-env"));
    }

    #[test]
    fn stops_at_first_positional_and_after_double_dash() {
        let p = set().parse(&args(&["db", "-config", "x"])).unwrap();
        assert_eq!(p.args, vec!["db", "-config", "x"]);
        assert_eq!(p.str("config"), "");
        assert!(!p.is_set("config"));
        let p = set().parse(&args(&["--", "-o"])).unwrap();
        assert_eq!(p.args, vec!["-o"]);
        let p = set().parse(&args(&["-", "a"])).unwrap();
        assert_eq!(p.args, vec!["-", "a"]);
    }

    #[test]
    fn defaults_and_last_value_wins() {
        let p = set().parse(&args(&[])).unwrap();
        assert_eq!(p.int("parallelism"), 8);
        let p = set()
            .parse(&args(&["-parallelism", "2", "-parallelism=0x10"]))
            .unwrap();
        assert_eq!(p.int("parallelism"), 16);
    }

    #[test]
    fn go_error_wordings() {
        assert_eq!(err(&["-v", "x"]), "flag provided but not defined: -v");
        assert_eq!(err(&["--v=1"]), "flag provided but not defined: -v");
        assert_eq!(err(&["-config"]), "flag needs an argument: -config");
        assert_eq!(err(&["---o=/tmp/y"]), "bad flag syntax: ---o=/tmp/y");
        assert_eq!(err(&["-=x"]), "bad flag syntax: -=x");
        assert_eq!(
            err(&["-no-expand-env=maybe"]),
            "invalid boolean value \"maybe\" for -no-expand-env: parse error"
        );
        assert_eq!(
            err(&["-parallelism", "x"]),
            "invalid value \"x\" for flag -parallelism: parse error"
        );
        assert_eq!(
            err(&["-parallelism=99999999999999999999"]),
            "invalid value \"99999999999999999999\" for flag -parallelism: value out of range"
        );
        assert_eq!(
            err(&["-index", "zz"]),
            "invalid value \"zz\" for flag -index: invalid hexadecimal format"
        );
    }

    #[test]
    fn repeatable_flags_keep_every_value_in_order() {
        let mut fs = set();
        fs.strings("label");
        let p = fs.parse(&args(&[])).unwrap();
        assert!(p.strings("label").is_empty());
        let p = fs
            .parse(&args(&[
                "-label",
                "a=1",
                "--label=b=2",
                "-label",
                "a=3",
                "db",
            ]))
            .unwrap();
        assert_eq!(p.strings("label"), ["a=1", "b=2", "a=3"]);
        assert!(p.is_set("label"));
        assert_eq!(p.args, vec!["db"]);
        assert_eq!(
            fs.parse(&args(&["-label"])).unwrap_err(),
            FlagError::Invalid("flag needs an argument: -label".into())
        );
    }

    #[test]
    fn help_flags() {
        for h in ["-h", "-help", "--h", "--help", "-h=1"] {
            assert_eq!(
                set().parse(&args(&[h])).unwrap_err(),
                FlagError::Help,
                "{h}"
            );
        }
    }
}
