//! A JSON-schema subset validator for the OpenAPI document (`src/server/openapi.json`): `type`
//! (object, array, string, integer, number, boolean), `nullable`, `enum`, `minimum`, `pattern`
//! (anchored `^[class]{m,n}$` only), `required`, `properties`, `additionalProperties: false`,
//! `items`, `allOf`, `oneOf` (exactly one) and `$ref` to `#/…` of the document.
//!
//! What must stay true: a keyword this validator does not know fails the validation (so a
//! schema never passes because part of it was ignored).

use serde_json::Value;

/// Keywords that only describe (no constraint).
const ANNOTATIONS: &[&str] = &["description", "format", "default", "maximum", "maxLength"];

/// Validates `value` against `schema` (resolving `$ref`s in `doc`); the error names the JSON
/// path and the rule.
pub fn validate(doc: &Value, schema: &Value, value: &Value) -> Result<(), String> {
    check(doc, schema, value, "$")
}

fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let s = schema
        .as_object()
        .ok_or_else(|| format!("{at}: schema is not an object: {schema}"))?;
    if let Some(r) = s.get("$ref") {
        let r = r.as_str().ok_or_else(|| format!("{at}: bad $ref"))?;
        let target = r
            .strip_prefix('#')
            .and_then(|p| doc.pointer(p))
            .ok_or_else(|| format!("{at}: unresolved $ref {r}"))?;
        return check(doc, target, v, at);
    }
    if v.is_null() {
        return if s.get("nullable") == Some(&Value::Bool(true)) {
            Ok(())
        } else {
            Err(format!("{at}: null where the schema is not nullable"))
        };
    }
    for (k, rule) in s {
        match k.as_str() {
            "nullable" | "required" | "additionalProperties" => {}
            "type" => check_type(rule, v, at)?,
            "enum" => {
                let allowed = rule.as_array().ok_or_else(|| format!("{at}: bad enum"))?;
                if !allowed.contains(v) {
                    return Err(format!("{at}: {v} not in enum {rule}"));
                }
            }
            "minimum" => {
                let min = rule.as_f64().ok_or_else(|| format!("{at}: bad minimum"))?;
                if v.as_f64().is_some_and(|n| n < min) {
                    return Err(format!("{at}: {v} below minimum {min}"));
                }
            }
            "pattern" => check_pattern(rule.as_str().unwrap_or_default(), v, at)?,
            "properties" => check_object(doc, s, v, at)?,
            "items" => {
                let items = v.as_array().ok_or_else(|| format!("{at}: not an array"))?;
                for (i, x) in items.iter().enumerate() {
                    check(doc, rule, x, &format!("{at}[{i}]"))?;
                }
            }
            "allOf" => {
                for sub in rule.as_array().ok_or_else(|| format!("{at}: bad allOf"))? {
                    check(doc, sub, v, at)?;
                }
            }
            "oneOf" => {
                let subs = rule.as_array().ok_or_else(|| format!("{at}: bad oneOf"))?;
                let results: Vec<_> = subs.iter().map(|x| check(doc, x, v, at)).collect();
                let matched = results.iter().filter(|r| r.is_ok()).count();
                if matched != 1 {
                    return Err(format!(
                        "{at}: {matched} of oneOf matched {v}: {:?}",
                        results
                            .into_iter()
                            .filter_map(Result::err)
                            .collect::<Vec<_>>()
                    ));
                }
            }
            other if ANNOTATIONS.contains(&other) => {}
            other => return Err(format!("{at}: unsupported schema keyword {other:?}")),
        }
    }
    Ok(())
}

fn check_type(rule: &Value, v: &Value, at: &str) -> Result<(), String> {
    let want = rule.as_str().ok_or_else(|| format!("{at}: bad type"))?;
    let ok = match want {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        other => return Err(format!("{at}: unsupported type {other:?}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{at}: {v} is not of type {want}"))
    }
}

fn check_object(
    doc: &Value,
    s: &serde_json::Map<String, Value>,
    v: &Value,
    at: &str,
) -> Result<(), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{at}: {v} is not an object"))?;
    let props = s["properties"]
        .as_object()
        .ok_or_else(|| format!("{at}: bad properties"))?;
    for name in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = name.as_str().unwrap_or_default();
        if !obj.contains_key(name) {
            return Err(format!("{at}: required field {name:?} missing in {v}"));
        }
    }
    let closed = s.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, x) in obj {
        match props.get(name) {
            Some(p) => check(doc, p, x, &format!("{at}.{name}"))?,
            None if closed => return Err(format!("{at}: undocumented field {name:?}")),
            None => {}
        }
    }
    Ok(())
}

/// `^[chars]{m,n}$` with ranges like `a-z` and literal characters (a trailing `-` is literal).
fn check_pattern(pattern: &str, v: &Value, at: &str) -> Result<(), String> {
    let unsupported = || format!("{at}: unsupported pattern {pattern:?}");
    let text = v
        .as_str()
        .ok_or_else(|| format!("{at}: pattern on a non-string"))?;
    let body = pattern
        .strip_prefix("^[")
        .and_then(|p| p.strip_suffix('$'))
        .ok_or_else(unsupported)?;
    let (class, count) = body.split_once("]{").ok_or_else(unsupported)?;
    let count = count.strip_suffix('}').ok_or_else(unsupported)?;
    let (min, max) = match count.split_once(',') {
        Some((a, b)) => (a.parse::<usize>(), b.parse::<usize>()),
        None => (count.parse::<usize>(), count.parse::<usize>()),
    };
    let (min, max) = (
        min.map_err(|_| unsupported())?,
        max.map_err(|_| unsupported())?,
    );
    let chars: Vec<char> = class.chars().collect();
    let in_class = |c: char| {
        let mut i = 0;
        while i < chars.len() {
            if i + 2 < chars.len() && chars[i + 1] == '-' {
                if (chars[i]..=chars[i + 2]).contains(&c) {
                    return true;
                }
                i += 3;
            } else {
                if chars[i] == c {
                    return true;
                }
                i += 1;
            }
        }
        false
    };
    let n = text.chars().count();
    if (min..=max).contains(&n) && text.chars().all(in_class) {
        Ok(())
    } else {
        Err(format!("{at}: {text:?} does not match {pattern}"))
    }
}

#[test]
fn schema_subset_rejects_drift() {
    let doc = serde_json::json!({"components": {"schemas": {
        "Pos": {"type": "object", "additionalProperties": false, "required": ["g", "i"],
                "properties": {"g": {"type": "string", "pattern": "^[0-9a-f]{2,4}$"},
                               "i": {"type": "integer", "minimum": 0}}},
        "Doc": {"type": "object", "additionalProperties": false, "required": ["pos", "from"],
                "properties": {
                    "pos": {"nullable": true, "allOf": [{"$ref": "#/components/schemas/Pos"}]},
                    "list": {"type": "array", "items": {"type": "number"}},
                    "kind": {"type": "string", "enum": ["a", "b"]},
                    "from": {"oneOf": [
                        {"type": "object", "required": ["x"], "properties": {"x": {"type": "string"}}, "additionalProperties": false},
                        {"type": "object", "required": ["y"], "properties": {"y": {"type": "boolean"}}, "additionalProperties": false}]}}}
    }}});
    let schema = serde_json::json!({"$ref": "#/components/schemas/Doc"});
    let ok = |v: Value| validate(&doc, &schema, &v);
    assert_eq!(
        ok(
            serde_json::json!({"pos": {"g": "0a1", "i": 3}, "from": {"x": "s"}, "list": [1, 2.5], "kind": "a"})
        ),
        Ok(())
    );
    assert_eq!(
        ok(serde_json::json!({"pos": null, "from": {"y": true}})),
        Ok(())
    );
    for bad in [
        serde_json::json!({"from": {"x": "s"}}), // required missing
        serde_json::json!({"pos": null, "from": {"x": "s"}, "extra": 1}), // undocumented field
        serde_json::json!({"pos": {"g": "0a", "i": -1}, "from": {"x": "s"}}), // below minimum
        serde_json::json!({"pos": {"g": "0A", "i": 1}, "from": {"x": "s"}}), // pattern
        serde_json::json!({"pos": {"g": "0a", "i": 1.5}, "from": {"x": "s"}}), // not an integer
        serde_json::json!({"pos": null, "from": {"x": "s", "y": true}}), // no oneOf branch
        serde_json::json!({"pos": null, "from": {"z": 1}}), // no oneOf branch
        serde_json::json!({"pos": null, "from": {"x": "s"}, "list": [null]}), // null item
        serde_json::json!({"pos": null, "from": {"x": "s"}, "kind": "c"}), // enum
        serde_json::json!([]),                   // not an object
    ] {
        assert!(ok(bad.clone()).is_err(), "accepted {bad}");
    }
    let unknown = serde_json::json!({"type": "string", "minLength": 3});
    assert!(validate(&doc, &unknown, &serde_json::json!("abc")).is_err());
}
