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
    let duration = humantime::parse_duration(&text).map_err(|error| {
        serde::de::Error::custom(format_args!(
            "invalid duration `{text}`: {error} (hint: write e.g. \"200ms\" or \"1s 500ms\")"
        ))
    })?;
    check_range(&text, duration).map_err(serde::de::Error::custom)
}

/// `duration`, if it is within `0 ..= `[`MAX_DURATION`]; an error naming `text` otherwise.
pub fn check_range(text: &str, duration: Duration) -> Result<Duration, String> {
    if duration > MAX_DURATION {
        return Err(format!(
            "`{}` is longer than any duration a scenario may name, `24h` (hint: a scenario, its faults and its load last at most a day)",
            text.trim()
        ));
    }
    Ok(duration)
}

/// The longest duration a scenario file may name (a timeout, a delay, a fault's time or
/// length, a toxic): a day. Bounded so that no arithmetic on it can overflow the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: huge durations were accepted and overflowed the clock where used.
    #[test]
    fn durations_beyond_a_day_are_refused() {
        assert_eq!(check_range("24h", MAX_DURATION), Ok(MAX_DURATION));
        let err = check_range("100000000000s", Duration::from_secs(100_000_000_000)).unwrap_err();
        assert!(err.starts_with("`100000000000s` is longer than"), "{err}");
    }
}
