//! The proptest strategies of `harness fuzz`: what a varied reply may be, composed from
//! small strategies proptest can shrink (ranges, `Just`, `prop_oneof!`, tuples), so that a
//! failing case shrinks to a small one.
//!
//! A [`Case`] replaces one scripted reply (a [`Slot`]) with a [`Replacement`], and may ask
//! the target to stream (and the stub to cut a stream short). Hostile variants are any
//! reply a provider or executor might send; tolerable ones say the same as the original,
//! written differently.

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::{Map, Value, json};

use super::render::{self, Style, Wrap};
use crate::scenario::VariantKind;

/// What a scripted reply was, as far as varying it goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Original {
    /// An LLM reply whose content is this JSON.
    Json(Value),
    /// An LLM reply whose content is this text.
    Text(String),
    /// An LLM reply calling tools: names and arguments.
    ToolCalls(Vec<(String, Value)>),
    /// An LLM error reply with this status.
    Error(u16),
    /// An executor reply: its body as JSON and its HTTP status.
    Executor { body: Value, status: u16 },
}

/// One scripted reply that cases may replace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slot {
    pub(crate) place: Place,
    pub(crate) original: Original,
}

/// Where a reply is in the scenario file (indices from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    Llm {
        rule: usize,
        reply: usize,
        agent: Option<String>,
    },
    Executor {
        name: String,
        rule: usize,
        reply: usize,
    },
}

impl Place {
    /// `llm[1] (planner), reply 1`, 1-based as the rule ids of the journal.
    pub(crate) fn label(&self) -> String {
        match self {
            Place::Llm { rule, reply, agent } => format!(
                "llm[{}]{}, reply {}",
                rule + 1,
                agent
                    .as_ref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default(),
                reply + 1
            ),
            Place::Executor { name, rule, reply } => {
                format!("executor.{name}[{}], reply {}", rule + 1, reply + 1)
            }
        }
    }
}

/// What a case answers instead of the original reply.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Replacement {
    /// The scripted reply itself (a case that varies only how it is delivered).
    Original,
    /// LLM content, exactly this text, with this finish reason (`stop` when none).
    Text {
        text: String,
        finish_reason: Option<String>,
    },
    /// LLM tool calls: names and `function.arguments` exactly as sent.
    ToolCalls(Vec<(String, String)>),
    /// An LLM error status and message.
    Error { status: u16, message: String },
    /// An executor answer.
    Executor {
        status: u16,
        body: Value,
        delay_ms: u64,
    },
}

/// One adversarial case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Case {
    pub(crate) kind: VariantKind,
    /// Index into the slots.
    pub(crate) slot: usize,
    pub(crate) reply: Replacement,
    /// The target is asked to stream (the scenario's `stream_input` set to true).
    pub(crate) streamed: bool,
    /// The stub ends the stream of the varied agent's first call after this many chunks.
    pub(crate) stream_cut: Option<u32>,
    /// What was varied, for people.
    pub(crate) what: String,
}

/// Error statuses of each wire API, as a provider answers them; a new dialect's statuses
/// go here, and every LLM slot draws from all of them (a pipeline may meet any provider
/// behind a gateway).
pub(crate) const LLM_ERROR_STATUSES: &[(&str, &[u16])] = &[
    (
        "openai-chat",
        &[400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504],
    ),
    // An overloaded provider (Anthropic's 529) behind an OpenAI-compatible gateway.
    ("overloaded", &[529]),
];

/// Statuses an executor service answers with when it cannot run the program.
const EXECUTOR_ERROR_STATUSES: &[u16] = &[400, 404, 409, 413, 429, 500, 502, 503, 504];

/// How cases are drawn.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) hostile: bool,
    pub(crate) tolerable: bool,
    /// The target can be asked to stream.
    pub(crate) streamable: bool,
    /// The longest "slow executor" delay.
    pub(crate) max_delay_ms: u64,
}

/// A varied reply before it is placed in a case: the reply, whether to stream, where to
/// cut the stream, and what was done.
type Variant = (Replacement, bool, Option<u32>, String);

/// Every case over `slots`: each slot and each kind of variation equally likely.
pub(crate) fn cases(slots: &[Slot], settings: &Settings) -> Option<BoxedStrategy<Case>> {
    let mut options: Vec<BoxedStrategy<Case>> = Vec::new();
    for (index, slot) in slots.iter().enumerate() {
        let kinds = [
            (
                VariantKind::Hostile,
                settings.hostile,
                hostile(slot, settings),
            ),
            (
                VariantKind::Tolerable,
                settings.tolerable,
                tolerable(slot, settings),
            ),
        ];
        for (kind, wanted, strategy) in kinds {
            let Some(strategy) = strategy.filter(|_| wanted) else {
                continue;
            };
            options.push(
                strategy
                    .prop_map(move |(reply, streamed, stream_cut, what)| Case {
                        kind,
                        slot: index,
                        reply,
                        streamed,
                        stream_cut,
                        what,
                    })
                    .boxed(),
            );
        }
    }
    (!options.is_empty()).then(|| Union::new(options).boxed())
}

fn hostile(slot: &Slot, settings: &Settings) -> Option<BoxedStrategy<Variant>> {
    let plain = |reply: Replacement, what: String| (reply, false, None, what);
    let text = |text: String| Replacement::Text {
        text,
        finish_reason: None,
    };
    Some(match &slot.original {
        Original::Json(v) => {
            let compact = v.to_string();
            let cut = compact.clone();
            let mut options: Vec<(u32, BoxedStrategy<Variant>)> = vec![
                (
                    12,
                    (json_mutation(v, false), wrap())
                        .prop_map(move |((v, what), wrap)| {
                            let shown = [what, wrap.describe()]
                                .into_iter()
                                .filter(|s| !s.is_empty())
                                .collect::<Vec<_>>()
                                .join(", ");
                            plain(
                                text(wrap.apply(&render::write(&v, Style::default()))),
                                shown,
                            )
                        })
                        .boxed(),
                ),
                (
                    2,
                    (0u16..1000)
                        .prop_map(move |p| {
                            plain(
                                Replacement::Text {
                                    text: render::truncate(&cut, p),
                                    finish_reason: Some("length".into()),
                                },
                                format!(
                                    "finish_reason `length`, {}",
                                    Wrap::Truncated(p).describe()
                                ),
                            )
                        })
                        .boxed(),
                ),
                (2, protocol(&compact)),
                (2, error_status()),
            ];
            if settings.streamable {
                options.push((1, stream_cut()));
            }
            weighted(options)
        }
        Original::Text(t) => {
            let t = t.clone();
            let mut options: Vec<(u32, BoxedStrategy<Variant>)> = vec![
                (
                    3,
                    (0u16..1000)
                        .prop_map(move |p| {
                            plain(text(render::truncate(&t, p)), Wrap::Truncated(p).describe())
                        })
                        .boxed(),
                ),
                (2, protocol("")),
                (2, error_status()),
            ];
            if settings.streamable {
                options.push((1, stream_cut()));
            }
            weighted(options)
        }
        Original::ToolCalls(calls) => {
            let (name, args) = calls.first().cloned().unwrap_or_default();
            let name2 = name.clone();
            let name3 = name.clone();
            let compact = args.to_string();
            weighted(vec![
                (
                    6,
                    (json_mutation(&args, false), wrap())
                        .prop_map(move |((v, what), wrap)| {
                            let raw = wrap.apply(&v.to_string());
                            (
                                Replacement::ToolCalls(vec![(name.clone(), raw)]),
                                false,
                                None,
                                format!("tool call arguments: {what} {}", wrap.describe()),
                            )
                        })
                        .boxed(),
                ),
                (
                    2,
                    (2usize..5)
                        .prop_map(move |n| {
                            plain(
                                Replacement::ToolCalls(vec![(name2.clone(), compact.clone()); n]),
                                format!("{n} tool calls"),
                            )
                        })
                        .boxed(),
                ),
                (
                    1,
                    Just(plain(
                        Replacement::ToolCalls(vec![(name3, String::new())]),
                        "tool call without arguments".into(),
                    ))
                    .boxed(),
                ),
                (2, error_status()),
            ])
        }
        Original::Error(_) => error_status(),
        Original::Executor { body, status } => {
            let status = *status;
            let (b1, b2, b3) = (body.clone(), body.clone(), body.clone());
            let max_delay = settings.max_delay_ms;
            weighted(vec![
                (
                    6,
                    json_mutation(body, true)
                        .prop_map(move |(body, what)| {
                            plain(
                                Replacement::Executor {
                                    status,
                                    body,
                                    delay_ms: 0,
                                },
                                what,
                            )
                        })
                        .boxed(),
                ),
                (
                    1,
                    Just(plain(
                        Replacement::Executor {
                            status,
                            body: json!({"success": false}),
                            delay_ms: 0,
                        },
                        "`success: false` and nothing else".into(),
                    ))
                    .boxed(),
                ),
                (
                    2,
                    proptest::sample::select(EXECUTOR_ERROR_STATUSES)
                        .prop_map(move |s| {
                            plain(
                                Replacement::Executor {
                                    status: s,
                                    body: b1.clone(),
                                    delay_ms: 0,
                                },
                                format!("HTTP status {s}"),
                            )
                        })
                        .boxed(),
                ),
                (
                    1,
                    (0..=max_delay)
                        .prop_map(move |ms| {
                            plain(
                                Replacement::Executor {
                                    status,
                                    body: b2.clone(),
                                    delay_ms: ms,
                                },
                                format!("answered after {ms}ms"),
                            )
                        })
                        .boxed(),
                ),
                (
                    1,
                    Just(plain(
                        Replacement::Executor {
                            status,
                            body: match b3 {
                                Value::Object(mut m) => {
                                    m.insert("success".into(), json!(false));
                                    m.insert("errors".into(), json!([]));
                                    Value::Object(m)
                                }
                                other => other,
                            },
                            delay_ms: 0,
                        },
                        "`success: false` without errors".into(),
                    ))
                    .boxed(),
                ),
            ])
        }
    })
}

fn tolerable(slot: &Slot, settings: &Settings) -> Option<BoxedStrategy<Variant>> {
    let streamable = settings.streamable;
    let streamed = move || {
        if streamable {
            any::<bool>().boxed()
        } else {
            Just(false).boxed()
        }
    };
    Some(match &slot.original {
        Original::Json(v) => {
            let v = v.clone();
            (
                (0u8..3, 0u8..4, 0u8..4),
                (0usize..4, any::<bool>(), any::<bool>(), any::<bool>()),
                streamed(),
            )
                .prop_map(
                    move |((fence, before, after), (rotate, extra, escapes, pretty), streamed)| {
                        let mut what = Vec::new();
                        let mut value = v.clone();
                        if extra && let Value::Object(map) = &mut value {
                            map.insert("note".into(), json!("an extra key"));
                            what.push("an extra key".to_string());
                        }
                        let keys = value.as_object().map_or(0, Map::len);
                        if keys > 1 && rotate % keys != 0 {
                            what.push("keys in another order".into());
                        }
                        if pretty {
                            what.push("spaced out".into());
                        }
                        if escapes {
                            what.push("\\u escapes".into());
                        }
                        let style = Style {
                            rotate,
                            pretty,
                            escapes,
                        };
                        let mut text = render::write(&value, style);
                        if fence > 0 {
                            text = render::fence(&text, fence == 2);
                            what.push(Wrap::Fenced { tag: fence == 2 }.describe());
                        }
                        let (b, a) = (WHITESPACE[before as usize], WHITESPACE[after as usize]);
                        if !b.is_empty() || !a.is_empty() {
                            what.push("whitespace around".into());
                        }
                        text = format!("{b}{text}{a}");
                        if streamed {
                            what.push("streamed".into());
                        }
                        (
                            Replacement::Text {
                                text,
                                finish_reason: None,
                            },
                            streamed,
                            None,
                            described(what),
                        )
                    },
                )
                .boxed()
        }
        Original::Text(t) => {
            let t = t.clone();
            (0u8..4, 0u8..4, streamed())
                .prop_map(move |(before, after, streamed)| {
                    let (b, a) = (WHITESPACE[before as usize], WHITESPACE[after as usize]);
                    let mut what = Vec::new();
                    if !b.is_empty() || !a.is_empty() {
                        what.push("whitespace around".to_string());
                    }
                    if streamed {
                        what.push("streamed".into());
                    }
                    (
                        Replacement::Text {
                            text: format!("{b}{t}{a}"),
                            finish_reason: None,
                        },
                        streamed,
                        None,
                        described(what),
                    )
                })
                .boxed()
        }
        Original::ToolCalls(calls) => {
            let calls = calls.clone();
            (0usize..4, any::<bool>(), any::<bool>(), streamed())
                .prop_map(move |(rotate, escapes, pretty, streamed)| {
                    let style = Style {
                        rotate,
                        pretty,
                        escapes,
                    };
                    let sent = calls
                        .iter()
                        .map(|(name, args)| (name.clone(), render::write(args, style)))
                        .collect();
                    let mut what = vec!["tool call arguments".to_string()];
                    if rotate > 0 {
                        what.push("keys in another order".into());
                    }
                    if pretty {
                        what.push("spaced out".into());
                    }
                    if escapes {
                        what.push("\\u escapes".into());
                    }
                    if streamed {
                        what.push("streamed".into());
                    }
                    (
                        Replacement::ToolCalls(sent),
                        streamed,
                        None,
                        what.join(", "),
                    )
                })
                .boxed()
        }
        Original::Error(_) => return None,
        Original::Executor { body, status } => {
            let (body, status) = (body.clone(), *status);
            Just(())
                .prop_map(move |()| {
                    let mut body = body.clone();
                    if let Value::Object(map) = &mut body {
                        map.insert("note".into(), json!("an extra key"));
                    }
                    (
                        Replacement::Executor {
                            status,
                            body,
                            delay_ms: 0,
                        },
                        false,
                        None,
                        "an extra key".into(),
                    )
                })
                .boxed()
        }
    })
}

const WHITESPACE: [&str; 4] = ["", " ", "\n", "\n\n\t "];

fn described(what: Vec<String>) -> String {
    if what.is_empty() {
        "unchanged".into()
    } else {
        what.join(", ")
    }
}

fn weighted(options: Vec<(u32, BoxedStrategy<Variant>)>) -> BoxedStrategy<Variant> {
    Union::new_weighted(options).boxed()
}

/// Text where JSON goes.
fn wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        6 => Just(Wrap::Raw),
        2 => any::<bool>().prop_map(|tag| Wrap::Fenced { tag }),
        1 => Just(Wrap::ProseBefore),
        1 => Just(Wrap::ProseAfter),
        1 => Just(Wrap::Bom),
        1 => Just(Wrap::TrailingComma),
        1 => Just(Wrap::SingleQuotes),
        1 => (0u16..1000).prop_map(Wrap::Truncated),
        1 => Just(Wrap::TwoDocuments),
    ]
}

/// Replies that break the protocol rather than the JSON: empty, a refusal, huge.
fn protocol(original: &str) -> BoxedStrategy<Variant> {
    let text = |t: String, what: &str| {
        (
            Replacement::Text {
                text: t,
                finish_reason: None,
            },
            false,
            None,
            what.to_string(),
        )
    };
    let original = original.to_string();
    prop_oneof![
        Just(text(String::new(), "an empty message")),
        Just(text(
            "I'm sorry, but I can't help with that.".into(),
            "a refusal"
        )),
        (0usize..40_000).prop_map(move |n| {
            let mut t = original.clone();
            t.push_str(&" ".repeat(n));
            text(t, &format!("followed by {n} spaces"))
        }),
        (0usize..40_000).prop_map(move |n| text("x".repeat(n), &format!("{n} characters of text"))),
    ]
    .boxed()
}

fn error_status() -> BoxedStrategy<Variant> {
    let statuses: Vec<u16> = LLM_ERROR_STATUSES
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    (
        proptest::sample::select(statuses),
        prop_oneof![
            Just(None),
            Just(Some(String::new())),
            (0usize..10_000).prop_map(|n| Some("e".repeat(n)))
        ],
    )
        .prop_map(|(status, message)| {
            let what = match &message {
                None => format!("HTTP status {status}"),
                Some(m) if m.is_empty() => format!("HTTP status {status} with an empty message"),
                Some(m) => format!("HTTP status {status} with a {}-character message", m.len()),
            };
            (
                Replacement::Error {
                    status,
                    message: message.unwrap_or_else(|| format!("provider error {status}")),
                },
                false,
                None,
                what,
            )
        })
        .boxed()
}

/// The original reply, streamed, and the stream cut short.
fn stream_cut() -> BoxedStrategy<Variant> {
    (0u32..8)
        .prop_map(|n| {
            (
                Replacement::Original,
                true,
                Some(n),
                format!("a stream that ends after {n} chunks"),
            )
        })
        .boxed()
}

/// A path to a node of a JSON value.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                prefix.push(Step::Key(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn shown(path: &[Step]) -> String {
    if path.is_empty() {
        return "the whole value".into();
    }
    let mut s = String::from("`");
    for (i, step) in path.iter().enumerate() {
        match step {
            Step::Key(k) if i == 0 => s.push_str(k),
            Step::Key(k) => s.push_str(&format!(".{k}")),
            Step::Index(n) => s.push_str(&format!("[{n}]")),
        }
    }
    s.push('`');
    s
}

#[derive(Debug, Clone)]
enum Op {
    Drop,
    Rename,
    Add(Value, String),
    Replace(Value, String),
}

/// Values put where others were: other types, `null`, empty, huge, deeply nested, numbers
/// at the edges. `in_toml`: the value is written in a scenario file (an executor reply),
/// which cannot hold `null` and whose reader stops at 100 levels of nesting.
fn odd_value(in_toml: bool) -> BoxedStrategy<(Value, String)> {
    let max_depth = if in_toml { 64 } else { 200 };
    let just = |v: Value, what: &str| Just((v, what.to_string())).boxed();
    let mut options = vec![
        just(json!(""), "an empty string"),
        just(json!([]), "an empty list"),
        just(json!({}), "an empty object"),
        just(json!(0), "0"),
        just(json!(-1), "-1"),
        just(json!(true), "true"),
        just(json!("NaN"), "the string \"NaN\""),
        just(json!(1e308), "1e308"),
        just(json!(-0.0), "-0"),
        just(json!(i64::MAX), "i64::MAX"),
        (0usize..40_000)
            .prop_map(|n| (json!("x".repeat(n)), format!("a {n}-character string")))
            .boxed(),
        (1usize..max_depth)
            .prop_map(|depth| {
                let mut v = json!([]);
                for _ in 0..depth {
                    v = json!([v]);
                }
                (v, format!("lists nested {depth} deep"))
            })
            .boxed(),
        (0usize..5000)
            .prop_map(|n| (json!(vec![0; n]), format!("a list of {n} zeros")))
            .boxed(),
    ];
    if !in_toml {
        options.insert(0, just(Value::Null, "null"));
    }
    Union::new(options).boxed()
}

/// `v` with one node dropped, renamed, given an extra key or replaced by an odd value
/// (see [`odd_value`] for `in_toml`).
fn json_mutation(v: &Value, in_toml: bool) -> BoxedStrategy<(Value, String)> {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    // The whole value and the values of keys are where parsers trip; list items less so.
    let (keyed, items): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|p| matches!(p.last(), None | Some(Step::Key(_))));
    let node = if items.is_empty() {
        (0..keyed.len()).boxed()
    } else {
        let k = keyed.len();
        prop_oneof![3 => 0..k, 1 => k..k + items.len()].boxed()
    };
    let all: Vec<Vec<Step>> = keyed.into_iter().chain(items).collect();
    let v = v.clone();
    let op = prop_oneof![
        Just(Op::Drop),
        Just(Op::Rename),
        odd_value(in_toml).prop_map(|(v, what)| Op::Replace(v, what)),
        odd_value(in_toml).prop_map(|(v, what)| Op::Add(v, what)),
    ];
    (node, op)
        .prop_map(move |(i, op)| apply(&v, &all[i], op))
        .boxed()
}

fn apply(v: &Value, path: &[Step], op: Op) -> (Value, String) {
    let mut out = v.clone();
    let what = shown(path);
    let Some((last, parent_path)) = path.split_last() else {
        return match op {
            Op::Drop | Op::Rename => (json!({}), "an empty object instead".into()),
            Op::Replace(x, w) => (x, format!("{w} instead")),
            Op::Add(x, w) => {
                if let Value::Object(m) = &mut out {
                    m.insert("unexpected".into(), x);
                }
                (out, format!("an extra key `unexpected` holding {w}"))
            }
        };
    };
    let mut parent = &mut out;
    for step in parent_path {
        parent = match step {
            Step::Key(k) => &mut parent[k.as_str()],
            Step::Index(i) => &mut parent[*i],
        };
    }
    let description = match (op, last, parent) {
        (Op::Drop, Step::Key(k), Value::Object(m)) => {
            m.remove(k);
            format!("{what} dropped")
        }
        (Op::Drop, Step::Index(i), Value::Array(items)) => {
            items.remove(*i);
            format!("{what} dropped")
        }
        (Op::Rename, Step::Key(k), Value::Object(m)) => {
            let renamed = if k.to_uppercase() != *k {
                k.to_uppercase()
            } else {
                format!("{k}_")
            };
            if let Some(x) = m.remove(k) {
                m.insert(renamed.clone(), x);
            }
            format!("{what} renamed `{renamed}`")
        }
        (Op::Replace(x, w), Step::Key(k), Value::Object(m)) => {
            m.insert(k.clone(), x);
            format!("{what} is {w}")
        }
        (Op::Replace(x, w), Step::Index(i), Value::Array(items)) => {
            items[*i] = x;
            format!("{what} is {w}")
        }
        (Op::Add(x, w), _, parent) => {
            let target = match parent {
                Value::Object(m) => match last {
                    Step::Key(k) => m.get_mut(k),
                    Step::Index(_) => None,
                },
                Value::Array(items) => match last {
                    Step::Index(i) => items.get_mut(*i),
                    Step::Key(_) => None,
                },
                _ => None,
            };
            match target {
                Some(Value::Object(m)) => {
                    m.insert("unexpected".into(), x);
                    format!("{what} has an extra key `unexpected` holding {w}")
                }
                Some(Value::Array(items)) => {
                    items.push(x);
                    format!("{what} has an extra item, {w}")
                }
                _ => return (v.clone(), "unchanged".into()),
            }
        }
        _ => return (v.clone(), "unchanged".into()),
    };
    (out, description)
}

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRng, TestRunner};

    use super::*;

    fn runner(seed: u8) -> TestRunner {
        TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &[seed; 32]),
        )
    }

    fn slots() -> Vec<Slot> {
        vec![
            Slot {
                place: Place::Llm {
                    rule: 0,
                    reply: 0,
                    agent: Some("planner".into()),
                },
                original: Original::Json(json!({"subtasks": ["a", "b"]})),
            },
            Slot {
                place: Place::Executor {
                    name: "sandbox".into(),
                    rule: 0,
                    reply: 0,
                },
                original: Original::Executor {
                    body: json!({"success": true, "artifacts": ["x"]}),
                    status: 200,
                },
            },
        ]
    }

    fn settings() -> Settings {
        Settings {
            hostile: true,
            tolerable: true,
            streamable: true,
            max_delay_ms: 100,
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_cases() {
        let strategy = cases(&slots(), &settings()).unwrap();
        let draw = |seed| {
            let mut r = runner(seed);
            (0..50)
                .map(|_| strategy.new_tree(&mut r).unwrap().current())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }

    #[test]
    fn tolerable_variants_keep_the_meaning() {
        let s = Settings {
            hostile: false,
            ..settings()
        };
        let strategy = cases(&slots()[..1], &s).unwrap();
        let mut r = runner(3);
        for _ in 0..200 {
            let case = strategy.new_tree(&mut r).unwrap().current();
            let Replacement::Text { text, .. } = &case.reply else {
                panic!("{case:?}")
            };
            let inner = text.trim();
            let inner = inner
                .strip_prefix("```json")
                .or_else(|| inner.strip_prefix("```"))
                .map_or(inner, |s| s.trim_end().strip_suffix("```").unwrap());
            let mut back: Value = serde_json::from_str(inner.trim()).unwrap();
            back.as_object_mut().unwrap().remove("note");
            assert_eq!(back, json!({"subtasks": ["a", "b"]}), "{}", case.what);
        }
    }

    #[test]
    fn executor_variants_never_need_null() {
        let strategy = cases(&slots()[1..], &settings()).unwrap();
        let mut r = runner(4);
        fn has_null(v: &Value) -> bool {
            match v {
                Value::Null => true,
                Value::Array(a) => a.iter().any(has_null),
                Value::Object(m) => m.values().any(has_null),
                _ => false,
            }
        }
        for _ in 0..300 {
            let case = strategy.new_tree(&mut r).unwrap().current();
            let Replacement::Executor { body, delay_ms, .. } = &case.reply else {
                panic!("{case:?}")
            };
            assert!(!has_null(body), "{body}");
            assert!(*delay_ms <= 100);
        }
    }

    #[test]
    fn a_hostile_case_shrinks_toward_a_short_reply() {
        // A failure "the reply is JSON without a list at `subtasks`" shrinks to a reply of
        // a few characters, whatever case first showed it.
        let only_planner = &slots()[..1];
        let s = Settings {
            tolerable: false,
            ..settings()
        };
        let strategy = cases(only_planner, &s).unwrap();
        let fails = |c: &Case| match &c.reply {
            Replacement::Text { text, .. } => {
                serde_json::from_str::<Value>(text).is_ok_and(|v| !v["subtasks"].is_array())
            }
            _ => false,
        };
        let mut r = runner(5);
        let mut found = 0;
        for _ in 0..300 {
            let mut tree = strategy.new_tree(&mut r).unwrap();
            if !fails(&tree.current()) {
                continue;
            }
            found += 1;
            let mut best = tree.current();
            if tree.simplify() {
                loop {
                    let c = tree.current();
                    let more = if fails(&c) {
                        best = c;
                        tree.simplify()
                    } else {
                        tree.complicate()
                    };
                    if !more {
                        break;
                    }
                }
            }
            let Replacement::Text { text, .. } = &best.reply else {
                unreachable!()
            };
            assert!(text.len() <= 20, "{text:?} ({})", best.what);
        }
        assert!(found > 5, "only {found} failing cases in 300");
    }
}
