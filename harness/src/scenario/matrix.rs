//! `[matrix]`: one file, many cases — the cartesian product of named value lists, less
//! the `exclude`d combinations, plus the `include`d ones (as CI matrices have them).
//!
//! ```toml
//! [matrix]
//! size = [1, 5, 10]
//! agents = ["planner+coder", "planner+coder+critic"]
//! exclude = [{ size = 1, agents = "planner+coder+critic" }]
//! include = [{ size = 50, agents = "planner+coder" }]
//! ```
//!
//! `{matrix.NAME}` in any string of the file is the case's value (a string that is only
//! the placeholder takes the value's type: `rate = "{matrix.rate}"` is a number). Each
//! case is a scenario of its own, with the id `file.toml[size=5,agents=planner+coder]`.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use crate::template::MatrixValue;

/// At most this many cases in one file.
pub const MAX_CASES: usize = 1000;

/// One case: its values by name, and in declaration order for its id.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub values: BTreeMap<String, MatrixValue>,
    pub ordered: Vec<(String, String)>,
}

/// What went wrong, and where in the file.
#[derive(Debug)]
pub(crate) struct MatrixError {
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Deserialize)]
struct Outer {
    #[serde(default)]
    matrix: Option<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
}

/// The cases of a file; None when it has no `[matrix]`. A TOML syntax error is left for
/// the real parse to report.
pub(crate) fn cases(source: &str) -> Result<Option<Vec<Case>>, MatrixError> {
    let Ok(outer) = toml::from_str::<Outer>(source) else {
        return Ok(None);
    };
    let Some(matrix) = outer.matrix else {
        return Ok(None);
    };
    let table_span = matrix.span();
    let mut entries: Vec<(String, Spanned<toml::Value>)> =
        matrix.into_inner().into_iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);

    let err = |span: Range<usize>, message: String, help: Option<&str>| MatrixError {
        span,
        message,
        help: help.map(str::to_string),
    };
    let mut dims: Vec<(String, Vec<MatrixValue>)> = Vec::new();
    let mut exclude = None;
    let mut include = None;
    for (name, value) in entries {
        let span = value.span();
        match name.as_str() {
            "exclude" => exclude = Some(value),
            "include" => include = Some(value),
            _ => {
                let toml::Value::Array(items) = value.get_ref() else {
                    return Err(err(
                        span,
                        format!("matrix dimension `{name}` must be a list of values"),
                        Some("write e.g. `size = [1, 5, 10]`"),
                    ));
                };
                if items.is_empty() {
                    return Err(err(
                        span,
                        format!("matrix dimension `{name}` has no values"),
                        None,
                    ));
                }
                let values = items
                    .iter()
                    .map(MatrixValue::from_toml)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        err(
                            span.clone(),
                            format!("matrix dimension `{name}` takes strings, numbers or booleans"),
                            None,
                        )
                    })?;
                dims.push((name, values));
            }
        }
    }
    if dims.is_empty() {
        return Err(err(
            table_span,
            "a `[matrix]` needs at least one dimension".into(),
            Some("add a list of values, e.g. `size = [1, 5, 10]`"),
        ));
    }
    let names: Vec<&str> = dims.iter().map(|(n, _)| n.as_str()).collect();

    let mut all: Vec<Vec<MatrixValue>> = vec![Vec::new()];
    for (_, values) in &dims {
        all = all
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect();
        if all.len() > MAX_CASES {
            return Err(err(
                table_span,
                format!("the matrix makes more than {MAX_CASES} cases"),
                Some("split the file, or `exclude` combinations"),
            ));
        }
    }

    if let Some(exclude) = exclude {
        for (rule, span) in combinations(&exclude, "exclude", &names)? {
            let before = all.len();
            all.retain(|case| !rule.iter().all(|(i, v)| case[*i] == *v));
            if all.len() == before {
                return Err(err(
                    span,
                    "this `exclude` entry matches no case of the matrix".into(),
                    Some("check its names and values against the dimensions"),
                ));
            }
        }
    }
    if let Some(include) = include {
        for (rule, span) in combinations(&include, "include", &names)? {
            if rule.len() != names.len() {
                return Err(err(
                    span,
                    format!(
                        "an `include` entry gives a value for every dimension: {}",
                        crate::diagnostic::quoted_list(&names)
                    ),
                    None,
                ));
            }
            let mut case = vec![MatrixValue::Bool(false); names.len()];
            for (i, v) in rule {
                case[i] = v;
            }
            if !all.contains(&case) {
                all.push(case);
            }
        }
    }
    Ok(Some(
        all.into_iter()
            .map(|case| Case {
                ordered: names
                    .iter()
                    .zip(&case)
                    .map(|(n, v)| (n.to_string(), v.text()))
                    .collect(),
                values: names
                    .iter()
                    .zip(case)
                    .map(|(n, v)| (n.to_string(), v))
                    .collect(),
            })
            .collect(),
    ))
}

/// The entries of `exclude`/`include`: (dimension index, value) pairs, with the span of
/// the list.
type Rule = Vec<(usize, MatrixValue)>;

fn combinations(
    list: &Spanned<toml::Value>,
    what: &str,
    names: &[&str],
) -> Result<Vec<(Rule, Range<usize>)>, MatrixError> {
    let span = list.span();
    let bad = |message: String, help: Option<String>| MatrixError {
        span: span.clone(),
        message,
        help,
    };
    let toml::Value::Array(items) = list.get_ref() else {
        return Err(bad(
            format!("`{what}` is a list of tables"),
            Some(format!("write e.g. `{what} = [{{ {} = … }}]`", names[0])),
        ));
    };
    let mut out = Vec::new();
    for item in items {
        let toml::Value::Table(t) = item else {
            return Err(bad(format!("`{what}` is a list of tables"), None));
        };
        let mut rule = Vec::new();
        for (k, v) in t {
            let Some(i) = names.iter().position(|n| n == k) else {
                let hint = crate::diagnostic::did_you_mean(k, names)
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        format!("dimensions: {}", crate::diagnostic::quoted_list(names))
                    });
                return Err(bad(
                    format!("`{what}` names `{k}`, which is not a dimension of the matrix"),
                    Some(hint),
                ));
            };
            let v = MatrixValue::from_toml(v).ok_or_else(|| {
                bad(
                    format!("`{what}.{k}` takes a string, number or boolean"),
                    None,
                )
            })?;
            rule.push((i, v));
        }
        out.push((rule, span.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_by_four_less_two_excluded_is_ten_cases_in_declared_order() {
        let src = r#"
name = "x"
[matrix]
size = [1, 5, 10, 20]
agents = ["a", "b", "c"]
exclude = [{ size = 1, agents = "c" }, { size = 20, agents = "a" }]
"#;
        let cases = cases(src).unwrap().unwrap();
        assert_eq!(cases.len(), 10);
        assert_eq!(
            cases[0].ordered,
            [("size".into(), "1".into()), ("agents".into(), "a".into())]
        );
        assert!(cases.iter().all(|c| c.ordered
            != [
                ("size".to_string(), "1".to_string()),
                ("agents".to_string(), "c".to_string())
            ]));
    }

    #[test]
    fn includes_add_cases_and_bad_entries_are_refused() {
        let with = |extra: &str| cases(&format!("[matrix]\nn = [1, 2]\n{extra}\n"));
        assert_eq!(with("include = [{ n = 3 }]").unwrap().unwrap().len(), 3);
        assert_eq!(with("include = [{ n = 2 }]").unwrap().unwrap().len(), 2);
        let e = with("exclude = [{ m = 1 }]").unwrap_err();
        assert!(e.message.contains("`m`"), "{}", e.message);
        let e = with("exclude = [{ n = 7 }]").unwrap_err();
        assert!(e.message.contains("matches no case"), "{}", e.message);
        assert!(cases("[matrix]\nn = []\n").is_err());
        assert!(cases("name = \"no matrix\"").unwrap().is_none());
    }
}
