//! Comparison operators as users write them in bounds and targets: `<`, `<=`, `>`, `>=`,
//! `==`, in front of a value.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Cmp {
    /// Splits a leading operator off `s` (two-character ones first, so `<=` is not `<`).
    pub fn split(s: &str) -> Option<(Cmp, &str)> {
        const OPS: [(&str, Cmp); 5] = [
            ("<=", Cmp::Le),
            (">=", Cmp::Ge),
            ("==", Cmp::Eq),
            ("<", Cmp::Lt),
            (">", Cmp::Gt),
        ];
        let s = s.trim();
        OPS.iter()
            .find_map(|(text, cmp)| s.strip_prefix(text).map(|rest| (*cmp, rest.trim())))
    }

    /// `actual <op> limit` for measured values: floats, so `==` means equal within
    /// rounding.
    pub fn holds_measured(self, actual: f64, limit: f64) -> bool {
        match self {
            Cmp::Eq => (actual - limit).abs() < 1e-9,
            cmp => cmp.holds(actual, limit),
        }
    }

    /// `actual <op> limit`
    pub fn holds<T: PartialOrd>(self, actual: T, limit: T) -> bool {
        match self {
            Cmp::Lt => actual < limit,
            Cmp::Le => actual <= limit,
            Cmp::Gt => actual > limit,
            Cmp::Ge => actual >= limit,
            Cmp::Eq => actual == limit,
        }
    }
}

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Eq => "==",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_split_longest_first() {
        assert_eq!(Cmp::split("<= 5s"), Some((Cmp::Le, "5s")));
        assert_eq!(Cmp::split(" >80%"), Some((Cmp::Gt, "80%")));
        assert_eq!(Cmp::split("== 1"), Some((Cmp::Eq, "1")));
        assert_eq!(Cmp::split("5s"), None);
        assert!(Cmp::Le.holds(5, 5) && !Cmp::Lt.holds(5, 5) && Cmp::Eq.holds(1.0, 1.0));
    }
}
