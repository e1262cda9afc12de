//! Durations in config files as people write them: `"200ms"`, `"1s 500ms"`, `"2m"`
//! (humantime's syntax), for `#[serde(with = "crate::serde_duration")]`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_duration(*duration))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(|error| {
        serde::de::Error::custom(format_args!(
            "invalid duration `{text}`: {error} (hint: write e.g. \"200ms\" or \"1s 500ms\")"
        ))
    })
}
