//! Reply sequences: the nth matching call gets the nth reply, and the last reply repeats.

use std::sync::{Mutex, MutexGuard};

/// Per-rule call counters of one stub.
#[derive(Debug)]
pub(crate) struct Sequences {
    calls: Mutex<Vec<usize>>,
}

/// The reply chosen for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pick {
    /// 0-based index into the rule's replies.
    pub(crate) index: usize,
    /// How many replies the rule has.
    pub(crate) of: usize,
}

impl Pick {
    /// `llm[2] reply 1/3`.
    pub(crate) fn label(self, rule: &str) -> String {
        format!("{rule} reply {}/{}", self.index + 1, self.of)
    }
}

impl Sequences {
    pub(crate) fn new(rules: usize) -> Self {
        Self {
            calls: Mutex::new(vec![0; rules]),
        }
    }

    /// Counts a call matched by rule `rule` (with `replies` replies) and picks its reply;
    /// `None` when the rule has no replies.
    pub(crate) fn next(&self, rule: usize, replies: usize) -> Option<Pick> {
        if replies == 0 {
            return None;
        }
        let mut calls = self.lock();
        if calls.len() <= rule {
            calls.resize(rule + 1, 0);
        }
        let before = calls[rule];
        calls[rule] += 1;
        Some(Pick {
            index: before.min(replies - 1),
            of: replies,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<usize>> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_call_gets_nth_reply_and_the_last_repeats() {
        let sequences = Sequences::new(2);
        let picks: Vec<usize> = (0..4)
            .map(|_| sequences.next(0, 2).unwrap().index)
            .collect();
        assert_eq!(picks, [0, 1, 1, 1]);
        // another rule has its own counter
        assert_eq!(sequences.next(1, 3).unwrap().index, 0);
        assert_eq!(sequences.next(1, 0), None);
        assert_eq!(Pick { index: 0, of: 3 }.label("llm[2]"), "llm[2] reply 1/3");
    }
}
