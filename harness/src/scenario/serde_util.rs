//! Small deserialization helpers that keep the TOML deserializer's spans: errors raised
//! here are reported at the value they came from.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// One value or an array of them: `reply = { … }` or `reply = [{ … }, { … }]`.
#[derive(Debug)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table or an array of tables")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                if out.is_empty() {
                    return Err(de::Error::custom("an empty array; give at least one reply"));
                }
                Ok(OneOrMany(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|t| OneOrMany(vec![t]))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Parses a humantime duration such as `250ms`, `1.5s` or `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    // humantime has no fractions; accept `1.5s` as users write it.
    if let Some(num) = s.strip_suffix('s').filter(|n| n.contains('.'))
        && let Ok(secs) = num.parse::<f64>()
    {
        let d = Duration::try_from_secs_f64(secs).map_err(|e| {
            format!("invalid duration `{s}`: {e} (hint: write it like `250ms`, `1.5s` or `2m`)")
        })?;
        return chaos::check_duration_range(s, d);
    }
    let d = humantime::parse_duration(s).map_err(|e| {
        format!("invalid duration `{s}`: {e} (hint: write it like `250ms`, `1.5s` or `2m`)")
    })?;
    chaos::check_duration_range(s, d)
}

pub fn deserialize_opt_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map(Some).map_err(de::Error::custom)
}

/// A string, or a number or boolean written as text: a matrix placeholder that is a whole
/// string (`PORT = "{matrix.port}"`) takes its value's type, and a text field takes it back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) => Ok(Text(s)),
            toml::Value::Integer(i) => Ok(Text(i.to_string())),
            toml::Value::Float(f) => Ok(Text(f.to_string())),
            toml::Value::Boolean(b) => Ok(Text(b.to_string())),
            other => Err(de::Error::custom(format!(
                "invalid type: {}, expected a string",
                other.type_str()
            ))),
        }
    }
}

pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Text::deserialize(d).map(|t| t.0)
}

pub fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Vec::<Text>::deserialize(d).map(|v| v.into_iter().map(|t| t.0).collect())
}

pub fn text_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    std::collections::BTreeMap::<String, Text>::deserialize(d)
        .map(|m| m.into_iter().map(|(k, v)| (k, v.0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_forms_users_write() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").unwrap_err().contains("hint"));
        assert!(parse_duration("-1.5s").unwrap_err().contains("hint"));
        assert_eq!(parse_duration("24h"), Ok(chaos::MAX_DURATION));
        assert!(parse_duration("25h").unwrap_err().contains("at most a day"));
        assert!(parse_duration("1e30s").unwrap_err().contains("hint"));
    }
}
