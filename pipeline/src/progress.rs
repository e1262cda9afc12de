//! Human progress lines on stderr: `refpipe: planner: calling http://…`.

use std::fmt::Display;
use std::time::Duration;

/// Where progress lines go, and how they are prefixed.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    prefix: String,
    sink: Sink,
}

#[derive(Debug, Clone)]
enum Sink {
    Stderr,
    #[cfg(test)]
    Silent,
    #[cfg(test)]
    Capture(std::sync::Arc<std::sync::Mutex<String>>),
}

impl Progress {
    /// Lines prefixed `refpipe: `.
    pub(crate) fn stderr() -> Self {
        Self {
            prefix: "refpipe".to_owned(),
            sink: Sink::Stderr,
        }
    }

    /// Discards everything; useful for tests.
    #[cfg(test)]
    pub(crate) fn silent() -> Self {
        Self {
            prefix: "refpipe".to_owned(),
            sink: Sink::Silent,
        }
    }

    /// Keeps every line for [`captured`](Self::captured); useful for tests.
    #[cfg(test)]
    pub(crate) fn capture() -> Self {
        Self {
            prefix: "refpipe".to_owned(),
            sink: Sink::Capture(Default::default()),
        }
    }

    /// The lines said so far, if capturing.
    #[cfg(test)]
    pub(crate) fn captured(&self) -> String {
        match &self.sink {
            Sink::Capture(lines) => crate::retry::lock(lines).clone(),
            _ => String::new(),
        }
    }

    /// A progress whose lines also carry `scope`: `refpipe: <scope>: …`.
    pub(crate) fn scoped(&self, scope: impl Display) -> Self {
        Self {
            prefix: format!("{}: {scope}", self.prefix),
            sink: self.sink.clone(),
        }
    }

    pub(crate) fn say(&self, line: impl Display) {
        match &self.sink {
            Sink::Stderr => eprintln!("{}: {line}", self.prefix),
            #[cfg(test)]
            Sink::Silent => {}
            #[cfg(test)]
            Sink::Capture(lines) => {
                crate::retry::lock(lines).push_str(&format!("{}: {line}\n", self.prefix));
            }
        }
    }
}

/// `d` for humans, to the millisecond: `1s 250ms`.
pub(crate) fn human(d: Duration) -> impl Display {
    let millis = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    humantime::format_duration(Duration::from_millis(millis))
}
