//! The request journal: one [`Exchange`] per request a stub received, in arrival order.
//!
//! The journal is the source of truth for what a stub saw and answered (wiremock's own
//! request recording is disabled). Each entry is written when the request is handled,
//! before any delay, so an entry exists by the time its response reaches the client.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One request a stub received and what it answered.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// When the request was received, since the stub started.
    pub at: Duration,
    /// When the request was received, to convert to "since scenario start".
    pub received: Instant,
    /// Which stub: `llm` (the primary provider), `llm.NAME` (another provider), or
    /// `executor.NAME`.
    pub source: String,
    /// The recognised agent, if any (LLM stubs only).
    pub agent: Option<String>,
    /// The provider the request went to (LLM stubs only).
    pub provider: Option<String>,
    /// HTTP method.
    pub method: String,
    /// Request path, without the query.
    pub path: String,
    /// One line: `model=… stream=… tools=N last[role]="…"` for chat completions, the path
    /// and a truncated body for executors.
    pub summary: String,
    /// The rule and reply served, e.g. `llm[2] reply 1/3`; `None` when no rule was used.
    pub rule: Option<String>,
    /// The faults injected, e.g. `chaos[1]: 429 retry-after=1s`; `None` when none.
    pub fault: Option<String>,
    /// The response status.
    pub status: u16,
    /// What was served: `200 json (412 bytes)`, `200 sse (7 chunks)`, `429 error`,
    /// `404 unmatched`, `200 malformed json (70 bytes)`, `200 empty body`, …; with
    /// ` after 1s 500ms` when the response was held back (a reply's delay plus delay
    /// faults).
    pub served: String,
    /// Set when no rule matched the request.
    pub unmatched: Option<Unmatched>,
}

/// Why a request matched no rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// A multi-line description of the request: method, path, agent, model, headers of
    /// interest, messages or body (truncated).
    pub request: String,
    /// The rule that failed the fewest conditions and which conditions failed, e.g.
    /// `llm[2] (when.agent = "critic" but the request's agent is "planner")`; `None` when
    /// there are no rules to compare with.
    pub closest: Option<String>,
}

/// A stub's journal, shared by its responder and its handle.
#[derive(Debug)]
pub(crate) struct Journal {
    started: Instant,
    entries: Mutex<Vec<Exchange>>,
}

impl Journal {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            entries: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    pub(crate) fn push(&self, exchange: Exchange) {
        self.lock().push(exchange);
    }

    pub(crate) fn snapshot(&self) -> Vec<Exchange> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Exchange>> {
        // a panic while holding the lock cannot leave a Vec half-pushed: keep going
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `text` on one line (newlines and tabs escaped), cut to `max` characters with `…`.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (count, c) in text.chars().enumerate() {
        if count == max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `served` of a response held back: `200 json (412 bytes) after 1s 500ms`.
pub(crate) fn delayed(served: &str, delay: Duration) -> String {
    format!("{served} after {}", humantime::format_duration(delay))
}

/// The candidate that failed the fewest conditions (the first of equals), as
/// `id (failure; failure)`.
pub(crate) fn closest<'a>(
    candidates: impl IntoIterator<Item = (&'a str, Vec<String>)>,
) -> Option<String> {
    let mut best: Option<(&str, Vec<String>)> = None;
    for (id, failures) in candidates {
        if best
            .as_ref()
            .is_none_or(|(_, fewest)| failures.len() < fewest.len())
        {
            best = Some((id, failures));
        }
    }
    best.map(|(id, failures)| format!("{id} ({})", failures.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_and_truncates() {
        assert_eq!(one_line("a\nb\tc", 80), "a\\nb\\tc");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("héllo wörld", 4), "héll…");
        assert_eq!(one_line("\u{7}", 4), "\\u{7}");
    }

    #[test]
    fn closest_prefers_fewest_failures_then_first() {
        let candidates = vec![
            ("r[1]", vec!["a".to_string(), "b".to_string()]),
            ("r[2]", vec!["c".to_string()]),
            ("r[3]", vec!["d".to_string()]),
        ];
        assert_eq!(closest(candidates).as_deref(), Some("r[2] (c)"));
        assert_eq!(closest(Vec::new()), None);
    }
}
