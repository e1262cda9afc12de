//! Rollback: undo every injected fault, in reverse order, however the scenario ends.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

type Undo<'a> = Box<dyn FnOnce() -> Result<(), String> + Send + 'a>;

/// A stack of undo steps, run in reverse order by [`Rollback::finish`] or on drop.
///
/// A scenario pushes one for each fault it
/// injects (continue a paused group, stop a CPU hog, restore a proxy's toxics, remove a
/// full file) and calls [`Rollback::finish`] at the end, which runs them last-in
/// first-out and reports each. If the scenario panics or returns early, dropping the
/// rollback runs the remaining steps all the same. A step that fails or panics does not
/// stop the others.
///
/// ```
/// use chaos::Rollback;
///
/// let mut rollback = Rollback::new();
/// rollback.push("first", || Ok::<(), String>(()));
/// rollback.push("second", || Err("the target is gone"));
/// let steps = rollback.finish();
/// let outcomes: Vec<_> = steps.iter().map(|step| (step.label.as_str(), step.outcome.clone())).collect();
/// assert_eq!(outcomes, [("second", Err("the target is gone".to_string())), ("first", Ok(()))]);
/// ```
///
/// Guards that undo their fault on drop ([`Pause`](crate::process::Pause),
/// [`CpuHog`](crate::process::CpuHog), [`FullFile`](crate::process::FullFile)) are pushed
/// with [`Rollback::push_guard`]. A step may borrow what it restores (a
/// [`FaultProxy`](crate::proxy::FaultProxy) to restore toxics on), for the rollback's
/// lifetime `'a`.
#[must_use = "dropping the rollback undoes everything at once"]
pub struct Rollback<'a> {
    steps: Vec<(String, Undo<'a>)>,
}

/// How one undo step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackStep {
    /// The label it was pushed with.
    pub label: String,
    /// When it ended.
    pub at: Instant,
    /// `Err` with the step's error, or `panicked: <message>`.
    pub outcome: Result<(), String>,
}

impl<'a> Rollback<'a> {
    /// An empty rollback.
    pub fn new() -> Self {
        Self { steps: Vec::new() }
    }

    /// Pushes an undo step; `label` names it in the report (e.g. `continue process group
    /// 1234`).
    pub fn push<F, E>(&mut self, label: impl Into<String>, undo: F)
    where
        F: FnOnce() -> Result<(), E> + Send + 'a,
        E: fmt::Display,
    {
        self.steps.push((
            label.into(),
            Box::new(move || undo().map_err(|error| error.to_string())),
        ));
    }

    /// Pushes a guard whose drop is the undo step.
    pub fn push_guard<G: Send + 'a>(&mut self, label: impl Into<String>, guard: G) {
        self.steps.push((
            label.into(),
            Box::new(move || {
                drop(guard);
                Ok(())
            }),
        ));
    }

    /// How many steps are pending.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether no step is pending.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs every step, last pushed first, and reports each.
    pub fn finish(mut self) -> Vec<RollbackStep> {
        self.run()
    }

    fn run(&mut self) -> Vec<RollbackStep> {
        let mut report = Vec::with_capacity(self.steps.len());
        while let Some((label, undo)) = self.steps.pop() {
            // Caught so that one failing step neither stops the others nor, during a
            // panic's unwinding, aborts the process.
            let outcome = catch_unwind(AssertUnwindSafe(undo))
                .unwrap_or_else(|panic| Err(format!("panicked: {}", panic_message(&*panic))));
            report.push(RollbackStep {
                label,
                at: Instant::now(),
                outcome,
            });
        }
        report
    }
}

impl Default for Rollback<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Rollback<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.steps.iter().map(|(label, _)| label.as_str()).collect();
        f.debug_struct("Rollback").field("steps", &labels).finish()
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        self.run();
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        message.to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn finish_runs_steps_in_reverse_and_reports_failures_and_panics() {
        let log = Mutex::new(Vec::new());
        let mut rollback = Rollback::new();
        rollback.push("a", || {
            log.lock().unwrap().push("a");
            Ok::<(), String>(())
        });
        rollback.push("b", || -> Result<(), String> { panic!("b broke") });
        rollback.push("c", || {
            log.lock().unwrap().push("c");
            Err("c failed")
        });
        assert_eq!(rollback.len(), 3);
        let steps = rollback.finish();
        let outcomes: Vec<(&str, Result<(), String>)> = steps
            .iter()
            .map(|step| (step.label.as_str(), step.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("c", Err("c failed".to_string())),
                ("b", Err("panicked: b broke".to_string())),
                ("a", Ok(())),
            ]
        );
        assert_eq!(*log.lock().unwrap(), ["c", "a"]);
    }

    #[test]
    fn drop_runs_the_steps_also_during_a_panic() {
        let log = Mutex::new(Vec::new());
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut rollback = Rollback::new();
            rollback.push("first", || {
                log.lock().unwrap().push("first");
                Ok::<(), String>(())
            });
            rollback.push("second", || -> Result<(), String> {
                panic!("second broke too")
            });
            rollback.push("third", || {
                log.lock().unwrap().push("third");
                Ok::<(), String>(())
            });
            panic!("the scenario failed");
        }));
        assert!(result.is_err());
        assert_eq!(*log.lock().unwrap(), ["third", "first"]);
    }
}
