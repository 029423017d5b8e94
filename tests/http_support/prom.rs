//! A small parser of the Prometheus text exposition format (0.0.4), strict enough to fail a
//! test on any malformed line: metric and label names, quoted label values with escapes,
//! values, optional timestamps, and a `# TYPE` before every family's samples.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Scrape {
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// The value of the sample `name` with exactly `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    pub fn must(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?} in {:#?}", self.names()))
    }

    pub fn of(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.types.keys().map(String::as_str).collect();
        v.sort();
        v
    }
}

pub fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Parses the text exposition format; panics (failing the test) on any malformed line, on a
/// sample without a preceding `# TYPE`, and on an unknown type.
pub fn parse_prometheus(text: &str) -> Scrape {
    let mut scrape = Scrape::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_metric_name(name), "bad name in {line:?}");
            let known = ["counter", "gauge", "histogram", "summary", "untyped"];
            assert!(known.contains(&kind), "bad type in {line:?}");
            scrape.types.insert(name.to_string(), kind.to_string());
        } else if line.starts_with('#') {
            continue;
        } else {
            let sample = parse_sample(line);
            assert!(
                scrape.types.contains_key(&sample.name),
                "sample before its TYPE: {line:?}"
            );
            scrape.samples.push(sample);
        }
    }
    scrape
}

pub fn parse_sample(line: &str) -> Sample {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while chars.get(i).is_some_and(|&c| c != '{' && c != ' ') {
        i += 1;
    }
    let name: String = chars[..i].iter().collect();
    assert!(is_metric_name(&name), "bad metric name in {line:?}");
    let mut labels = BTreeMap::new();
    if chars.get(i) == Some(&'{') {
        i += 1;
        while chars.get(i) != Some(&'}') {
            let start = i;
            while chars.get(i).is_some_and(|&c| c != '=') {
                i += 1;
            }
            let key: String = chars[start..i].iter().collect();
            assert!(is_metric_name(&key), "bad label name in {line:?}");
            assert_eq!(chars.get(i + 1), Some(&'"'), "unquoted value in {line:?}");
            i += 2;
            let mut value = String::new();
            loop {
                match chars.get(i) {
                    None => panic!("unterminated value in {line:?}"),
                    Some('"') => break,
                    Some('\\') => {
                        value.push(match chars.get(i + 1) {
                            Some('n') => '\n',
                            Some('\\') => '\\',
                            Some('"') => '"',
                            other => panic!("bad escape {other:?} in {line:?}"),
                        });
                        i += 2;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            i += 1;
            labels.insert(key, value);
            match chars.get(i) {
                Some(',') => i += 1,
                Some('}') => {}
                other => panic!("expected , or }} but found {other:?} in {line:?}"),
            }
        }
        i += 1;
    }
    let rest: String = chars[i..].iter().collect();
    let mut fields = rest.split_whitespace();
    let value = fields
        .next()
        .unwrap_or_else(|| panic!("no value in {line:?}"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line:?}"));
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .unwrap_or_else(|_| panic!("bad timestamp in {line:?}"));
    }
    assert!(fields.next().is_none(), "trailing fields in {line:?}");
    Sample {
        name,
        labels,
        value,
    }
}

#[test]
pub fn prometheus_parser_reads_labels_escapes_and_rejects_garbage() {
    let s = parse_prometheus(
        "# HELP a x\n# TYPE a gauge\na{x=\"1\",y=\"q\\\"\\\\\\n\"} 2.5\na 3 1700000000\n",
    );
    assert_eq!(s.value("a", &[("x", "1"), ("y", "q\"\\\n")]), Some(2.5));
    assert_eq!(s.value("a", &[]), Some(3.0));
    let bad_lines = [
        "a 1\n",
        "# TYPE a gauge\na{x=1} 2\n",
        "# TYPE a gauge\na x\n",
        "# TYPE a gauge\na{x=\"1\" 2\n",
        "# TYPE a bogus\na 1\n",
    ];
    for bad in bad_lines {
        let caught = std::panic::catch_unwind(|| parse_prometheus(bad));
        assert!(caught.is_err(), "accepted {bad:?}");
    }
}
