//! Human progress lines on stderr: `refpipe: planner: calling http://…`.

use std::fmt::Display;
use std::time::Duration;

/// Where progress lines go, and how they are prefixed.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    /// `None` discards every line.
    prefix: Option<String>,
}

impl Progress {
    /// Lines prefixed `refpipe: `.
    pub(crate) fn stderr() -> Self {
        Self {
            prefix: Some("refpipe".to_owned()),
        }
    }

    /// Discards everything; useful for tests.
    #[cfg(test)]
    pub(crate) fn silent() -> Self {
        Self { prefix: None }
    }

    /// A progress whose lines also carry `scope`: `refpipe: <scope>: …`.
    pub(crate) fn scoped(&self, scope: impl Display) -> Self {
        Self {
            prefix: self.prefix.as_ref().map(|p| format!("{p}: {scope}")),
        }
    }

    pub(crate) fn say(&self, line: impl Display) {
        if let Some(prefix) = &self.prefix {
            eprintln!("{prefix}: {line}");
        }
    }
}

/// `d` for humans, to the millisecond: `1s 250ms`.
pub(crate) fn human(d: Duration) -> impl Display {
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    humantime::format_duration(Duration::from_millis(millis))
}
