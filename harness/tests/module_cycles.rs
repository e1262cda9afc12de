//! No import circles between the harness crate's modules (DESIGN.md: "No import circles
//! inside a crate either").
//!
//! Every `crate::X` path in a module's source (a `use`, or a path written inline, outside
//! its `#[cfg(test)] mod tests`) is an edge from that top-level module to `X`; a module
//! is a file of `src/` or a folder with a `mod.rs`. The test fails on any strongly
//! connected component of more than one module, printing the edges inside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The `crate::X` edges of every top-level module under `src`.
fn graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let deps = graph.entry(top.clone()).or_default();
            for dep in crate_paths(without_tests(&text)) {
                if dep != top {
                    deps.insert(dep);
                }
            }
        }
    }
    graph
}

/// The source before its unit tests (which may reach anywhere).
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |i| &text[..i])
}

/// The first segment after every `crate::`, including each of `crate::{a, b::c}`.
fn crate_paths(text: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            out.extend(group.split(',').map(|p| ident(p.trim())));
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Strongly connected components of more than one module (Tarjan).
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in &self.graph[v] {
                let w = w.as_str();
                if !self.graph.contains_key(w) {
                    continue; // an item of lib.rs, or not a module
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    self.low.insert(v, self.low[v].min(self.low[w]));
                } else if self.on_stack.contains(w) {
                    self.low.insert(v, self.low[v].min(self.index[w]));
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out
}

fn describe(graph: &Graph, circle: &[String]) -> String {
    circle
        .iter()
        .map(|m| {
            let inside: Vec<&str> = graph[m]
                .iter()
                .filter(|d| circle.contains(d))
                .map(String::as_str)
                .collect();
            format!("  {m} → {}", inside.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_harness_modules_import_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.contains_key("runner") && graph.contains_key("cli"));
    let found = circles(&graph);
    assert!(
        found.is_empty(),
        "import circles between modules (move what both need to where it belongs):\n{}",
        found
            .iter()
            .map(|c| describe(&graph, c))
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn a_circle_is_found_and_named() {
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")] {
        graph.entry(from.into()).or_default().insert(to.into());
    }
    graph.entry("e".into()).or_default();
    let found = circles(&graph);
    assert_eq!(found, vec![vec!["a", "b", "c"]]);
    assert_eq!(describe(&graph, &found[0]), "  a → b\n  b → c\n  c → a");
}

#[test]
fn crate_paths_are_read_from_uses_groups_and_inline_paths() {
    let text = "use crate::errors::LoadError;\nuse crate::{plan::Planned, runner};\nlet x = crate::netpolicy::check(a);\n";
    assert_eq!(crate_paths(text), ["errors", "plan", "runner", "netpolicy"]);
    assert_eq!(
        without_tests("use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n"),
        "use crate::a;\n"
    );
}
