//! Shrinking a failing case with proptest's own [`ValueTree`]: simplify while the case
//! still fails for the same reason, complicate back when it does not, until neither can
//! move (proptest's loop, with "fails" meaning "breaks the same invariant").

use std::time::Instant;

use proptest::strategy::ValueTree;

/// What shrinking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shrunk {
    /// Simpler cases that still failed the same way (each one kept).
    pub(crate) steps: u32,
    /// Cases run while shrinking.
    pub(crate) runs: u32,
}

/// Shrinks `tree`, whose current value fails, running at most `max_runs` cases and none
/// after `deadline`. `fails` runs a case: `Some(evidence)` if it fails the same way.
/// Returns the simplest failing value, its evidence and what shrinking did.
pub(crate) fn shrink<T: Clone + std::fmt::Debug, E, Err>(
    tree: &mut dyn ValueTree<Value = T>,
    first: E,
    max_runs: u32,
    deadline: Instant,
    mut fails: impl FnMut(&T) -> Result<Option<E>, Err>,
) -> Result<(T, E, Shrunk), Err> {
    let mut best = (tree.current(), first);
    let mut done = Shrunk { steps: 0, runs: 0 };
    if !tree.simplify() {
        return Ok((best.0, best.1, done));
    }
    while done.runs < max_runs && Instant::now() < deadline {
        let candidate = tree.current();
        done.runs += 1;
        let moved = match fails(&candidate)? {
            Some(evidence) => {
                best = (candidate, evidence);
                done.steps += 1;
                tree.simplify()
            }
            None => tree.complicate(),
        };
        if !moved {
            break;
        }
    }
    Ok((best.0, best.1, done))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::strategy::Strategy;
    use proptest::test_runner::TestRunner;

    use super::*;

    #[test]
    fn shrinks_to_the_smallest_value_that_fails_the_same_way() {
        let mut runner = TestRunner::deterministic();
        let mut tree = (0u32..10_000).new_tree(&mut runner).unwrap();
        while tree.current() < 5000 {
            tree = (0u32..10_000).new_tree(&mut runner).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        // Fails "the same way" at 123 and above; fails differently (None) below.
        let (value, evidence, done) = shrink(&mut tree, "big", 1000, deadline, |v: &u32| {
            Ok::<_, ()>((*v >= 123).then_some("big"))
        })
        .unwrap();
        assert_eq!((value, evidence), (123, "big"));
        assert!(done.steps >= 1 && done.runs >= done.steps, "{done:?}");
    }

    #[test]
    fn stops_at_the_bound() {
        let mut runner = TestRunner::deterministic();
        let mut tree = (1000u32..10_000).new_tree(&mut runner).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let (_, _, done) =
            shrink(&mut tree, (), 3, deadline, |_: &u32| Ok::<_, ()>(Some(()))).unwrap();
        assert_eq!(done.runs, 3);
    }
}
