//! Predicates on JSON values (`{ ge = 1 }`, `{ contains = "sword" }`, or a bare value for
//! equality) and duration bounds (`"< 5s"`).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::serde_util::parse_duration;
use crate::compare::Cmp;

const PREDICATE_NAMES: &[&str] = &[
    "eq", "ne", "lt", "le", "gt", "ge", "contains", "matches", "exists", "null",
];

/// Names other tools use for our predicates, for the did-you-mean hint.
const ALIASES: &[(&str, &str)] = &[
    ("gte", "ge"),
    ("lte", "le"),
    ("equals", "eq"),
    ("neq", "ne"),
    ("regex", "matches"),
    ("includes", "contains"),
];

/// All of the listed checks must hold.
#[derive(Debug, Clone)]
pub struct Predicate(pub Vec<Check>);

#[derive(Debug, Clone)]
pub enum Check {
    Eq(Value),
    Ne(Value),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Contains(Value),
    Matches(regex::Regex),
    Exists(bool),
    /// `null = true`: there is a value and it is JSON `null` (TOML has no null to compare
    /// with); `null = false`: there is a value and it is not null.
    Null(bool),
}

impl<'de> Deserialize<'de> for Predicate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Predicate::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl Predicate {
    /// A table whose keys are predicate names is a predicate; anything else means `eq`.
    fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Ok(Predicate(vec![Check::Eq(value)]));
        };
        if map.is_empty() {
            return Err(format!(
                "an empty predicate; use one of {}",
                crate::diagnostic::quoted_list(PREDICATE_NAMES)
            ));
        }
        let mut checks = Vec::new();
        for (key, v) in map {
            let number = |v: &Value| {
                v.as_f64()
                    .ok_or_else(|| format!("`{key}` compares numbers; `{v}` is not a number"))
            };
            let check = match key.as_str() {
                "eq" => Check::Eq(v),
                "ne" => Check::Ne(v),
                "lt" => Check::Lt(number(&v)?),
                "le" => Check::Le(number(&v)?),
                "gt" => Check::Gt(number(&v)?),
                "ge" => Check::Ge(number(&v)?),
                "contains" => Check::Contains(v),
                "matches" => {
                    let pattern = v
                        .as_str()
                        .ok_or_else(|| format!("`matches` takes a regex string, not `{v}`"))?;
                    Check::Matches(
                        regex::Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"))?,
                    )
                }
                "exists" => Check::Exists(
                    v.as_bool()
                        .ok_or_else(|| format!("`exists` takes true or false, not `{v}`"))?,
                ),
                "null" => Check::Null(
                    v.as_bool()
                        .ok_or_else(|| format!("`null` takes true or false, not `{v}`"))?,
                ),
                other => {
                    let hint = ALIASES
                        .iter()
                        .find(|(alias, _)| *alias == other)
                        .map(|(_, name)| *name)
                        .or_else(|| crate::diagnostic::did_you_mean(other, PREDICATE_NAMES))
                        .map_or_else(
                            || "to compare with a table, write `{ eq = { … } }`".to_string(),
                            |s| format!("did you mean `{s}`?"),
                        );
                    return Err(format!(
                        "unknown predicate `{other}`, expected one of {} (hint: {hint})",
                        crate::diagnostic::quoted_list(PREDICATE_NAMES)
                    ));
                }
            };
            checks.push(check);
        }
        Ok(Predicate(checks))
    }

    /// Checks `actual` (None: nothing there); returns the first check that fails.
    pub fn eval(&self, actual: Option<&Value>) -> Result<(), String> {
        for check in &self.0 {
            check.eval(actual)?;
        }
        Ok(())
    }
}

impl Check {
    fn eval(&self, actual: Option<&Value>) -> Result<(), String> {
        let shown = actual.map_or_else(|| "nothing".to_string(), |v| format!("`{v}`"));
        let ok = match (self, actual) {
            (Check::Exists(want), a) => *want == a.is_some(),
            (_, None) => false,
            (Check::Null(want), Some(a)) => *want == a.is_null(),
            (Check::Eq(want), Some(a)) => json_eq(want, a),
            (Check::Ne(want), Some(a)) => !json_eq(want, a),
            (Check::Lt(n), Some(a)) => a.as_f64().is_some_and(|a| a < *n),
            (Check::Le(n), Some(a)) => a.as_f64().is_some_and(|a| a <= *n),
            (Check::Gt(n), Some(a)) => a.as_f64().is_some_and(|a| a > *n),
            (Check::Ge(n), Some(a)) => a.as_f64().is_some_and(|a| a >= *n),
            (Check::Contains(want), Some(Value::String(s))) => {
                want.as_str().is_some_and(|w| s.contains(w))
            }
            (Check::Contains(want), Some(Value::Array(items))) => {
                items.iter().any(|i| json_eq(want, i))
            }
            (Check::Contains(_), Some(_)) => false,
            (Check::Matches(re), Some(Value::String(s))) => re.is_match(s),
            (Check::Matches(_), Some(_)) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected {self}, got {shown}"))
        }
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::Eq(v) => write!(f, "`{v}`"),
            Check::Ne(v) => write!(f, "anything but `{v}`"),
            Check::Lt(n) => write!(f, "< {n}"),
            Check::Le(n) => write!(f, "<= {n}"),
            Check::Gt(n) => write!(f, "> {n}"),
            Check::Ge(n) => write!(f, ">= {n}"),
            Check::Contains(v) => write!(f, "something containing `{v}`"),
            Check::Matches(re) => write!(f, "a string matching /{re}/"),
            Check::Exists(true) => write!(f, "a value"),
            Check::Exists(false) => write!(f, "no value"),
            Check::Null(true) => write!(f, "`null`"),
            Check::Null(false) => write!(f, "a value other than `null`"),
        }
    }
}

/// A bound on a duration: `"< 5s"`, `"<= 500ms"`, or a lower bound such as `">= 1s"`
/// (a retry that honours `Retry-After` cannot be faster than it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub cmp: Cmp,
    pub limit: Duration,
}

impl Bound {
    pub fn holds(&self, d: Duration) -> bool {
        self.cmp.holds(d, self.limit)
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.cmp, humantime::format_duration(self.limit))
    }
}

impl std::str::FromStr for Bound {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match Cmp::split(s) {
            Some((cmp, rest)) if cmp != Cmp::Eq => Ok(Bound {
                cmp,
                limit: parse_duration(rest)?,
            }),
            _ => Err(format!(
                "`{}` is not a bound (hint: write a comparison and a duration, like `\"< 5s\"` or `\">= 1s\"`)",
                s.trim()
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Bound {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pred(v: Value) -> Predicate {
        Predicate::from_value(v).unwrap()
    }

    #[test]
    fn bare_value_means_equality_and_numbers_compare_by_value() {
        assert!(pred(json!(1)).eval(Some(&json!(1.0))).is_ok());
        let err = pred(json!("completed"))
            .eval(Some(&json!("failed")))
            .unwrap_err();
        assert_eq!(err, "expected `\"completed\"`, got `\"failed\"`");
    }

    #[test]
    fn null_is_told_apart_from_absent_and_from_a_value() {
        // See: issue 10 (`exists = true` holds for null; `null = true` says which).
        let is_null = pred(json!({"null": true}));
        assert!(is_null.eval(Some(&Value::Null)).is_ok());
        assert!(is_null.eval(Some(&json!(0))).is_err());
        assert!(is_null.eval(None).is_err());
        let not_null = pred(json!({"null": false}));
        assert!(not_null.eval(Some(&json!("x"))).is_ok());
        assert_eq!(
            not_null.eval(Some(&Value::Null)).unwrap_err(),
            "expected a value other than `null`, got `null`"
        );
    }

    #[test]
    fn every_named_check() {
        let v = json!({"ge": 1, "lt": 3});
        assert!(pred(v.clone()).eval(Some(&json!(2))).is_ok());
        assert!(pred(v).eval(Some(&json!(3))).is_err());
        assert!(
            pred(json!({"contains": "sword"}))
                .eval(Some(&json!("a sword!")))
                .is_ok()
        );
        assert!(
            pred(json!({"contains": 2}))
                .eval(Some(&json!([1, 2])))
                .is_ok()
        );
        assert!(
            pred(json!({"matches": "^a+$"}))
                .eval(Some(&json!("aaa")))
                .is_ok()
        );
        assert!(pred(json!({"exists": false})).eval(None).is_ok());
        assert!(pred(json!({"exists": true})).eval(None).is_err());
        assert!(pred(json!({"ne": "x"})).eval(Some(&json!("y"))).is_ok());
        assert!(
            pred(json!({"gt": 1})).eval(Some(&json!("2"))).is_err(),
            "strings are not numbers"
        );
    }

    #[test]
    fn a_misspelt_predicate_gets_a_suggestion() {
        let err = Predicate::from_value(json!({"gte": 1})).unwrap_err();
        assert!(err.contains("unknown predicate `gte`"), "{err}");
        assert!(err.contains("did you mean `ge`?"), "{err}");
    }

    #[test]
    fn bounds() {
        let b: Bound = "< 5s".parse().unwrap();
        assert!(b.holds(Duration::from_millis(4999)) && !b.holds(Duration::from_secs(5)));
        let b: Bound = "<=500ms".parse().unwrap();
        assert!(b.holds(Duration::from_millis(500)));
        let b: Bound = ">= 1s".parse().unwrap();
        assert!(b.holds(Duration::from_secs(1)) && !b.holds(Duration::from_millis(999)));
        let b: Bound = "> 1s".parse().unwrap();
        assert!(!b.holds(Duration::from_secs(1)));
        assert!("5s".parse::<Bound>().unwrap_err().contains("hint"));
    }
}
