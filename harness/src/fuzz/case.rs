//! A case as a scenario: the original file's TOML with one reply replaced, reply files
//! inlined and the expectations chosen, so that each case runs as an ordinary scenario
//! and the minimal one is written as one.

use serde_json::{Value, json};

use super::strategies::{Case, Original, Place, Replacement, Slot};
use crate::scenario::{ExecBodySpec, LlmBodySpec, Scenario, VaryTarget};

/// The scenario a fuzz run starts from.
#[derive(Debug, Clone)]
pub(crate) struct Base {
    /// The file as written, reply files inlined, without `[adversarial]` and `[expect]`.
    table: toml::Table,
    /// The scenario's own `[expect]`, as written.
    pub(crate) expect: toml::Table,
    pub(crate) slots: Vec<Slot>,
}

impl Base {
    /// The base of `scenario`, read from `source` (its file's text); the slots are the
    /// replies `vary` selects (all when empty).
    pub(crate) fn new(
        scenario: &Scenario,
        source: &str,
        vary: &[VaryTarget],
    ) -> Result<Base, String> {
        let mut table: toml::Table = toml::from_str(source).map_err(|e| e.message().to_string())?;
        let expect = match table.remove("expect") {
            Some(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        table.remove("adversarial");
        let spec = &scenario.spec;
        let mut slots = Vec::new();
        for (i, rule) in spec.llm.iter().enumerate() {
            let agent = rule.when.agent.clone();
            let chosen = vary.is_empty()
                || vary.iter().any(|v| match v {
                    VaryTarget::AllLlm => true,
                    VaryTarget::Agent(a) => agent.as_deref() == Some(a.as_str()),
                    _ => false,
                });
            for (j, reply) in rule.reply.0.iter().enumerate() {
                let original = match &reply.body {
                    LlmBodySpec::Json(v) => Original::Json(v.clone()),
                    LlmBodySpec::Text(t) => Original::Text(t.clone()),
                    LlmBodySpec::ToolCalls(calls) => Original::ToolCalls(
                        calls
                            .iter()
                            .map(|c| (c.name.clone(), c.arguments.clone()))
                            .collect(),
                    ),
                    LlmBodySpec::Error(e) => Original::Error(e.status),
                    LlmBodySpec::JsonFile(_) | LlmBodySpec::TextFile(_) => {
                        return Err("reply files are resolved when the scenario is loaded".into());
                    }
                    // A pinned embedding is a vector, not a reply a pipeline parses: it is
                    // kept as written, never varied.
                    LlmBodySpec::Embedding(_) => continue,
                };
                let raw = reply_at(&mut table, &["llm"], i, j)?;
                inline_llm_file(raw, &original)?;
                if chosen {
                    slots.push(Slot {
                        place: Place::Llm {
                            rule: i,
                            reply: j,
                            agent: agent.clone(),
                        },
                        original,
                    });
                }
            }
        }
        for (name, rules) in &spec.executor {
            let chosen = vary.is_empty()
                || vary.iter().any(|v| match v {
                    VaryTarget::AllExecutors => true,
                    VaryTarget::Executor(n) => n == name,
                    _ => false,
                });
            for (i, rule) in rules.iter().enumerate() {
                for (j, reply) in rule.reply.0.iter().enumerate() {
                    let body = match &reply.body {
                        ExecBodySpec::Outcome {
                            success,
                            artifacts,
                            logs,
                            errors,
                        } => {
                            json!({"success": success, "artifacts": artifacts, "logs": logs, "errors": errors})
                        }
                        ExecBodySpec::Json(v) => v.clone(),
                        ExecBodySpec::JsonFile(_) => {
                            return Err(
                                "reply files are resolved when the scenario is loaded".into()
                            );
                        }
                    };
                    let raw = reply_at(&mut table, &["executor", name], i, j)?;
                    if raw.remove("json_file").is_some() {
                        raw.insert("json".into(), to_toml(&body)?);
                    }
                    if chosen {
                        slots.push(Slot {
                            place: Place::Executor {
                                name: name.clone(),
                                rule: i,
                                reply: j,
                            },
                            original: Original::Executor {
                                body,
                                status: reply.status,
                            },
                        });
                    }
                }
            }
        }
        Ok(Base {
            table,
            expect,
            slots,
        })
    }

    /// The scenario file of `case`, with `expect` as its `[expect]`.
    pub(crate) fn with_case(
        &self,
        case: &Case,
        stream_input: Option<&str>,
        expect: toml::Table,
    ) -> Result<toml::Table, String> {
        let mut table = self.table.clone();
        let slot = &self.slots[case.slot];
        let (path, rule, reply): (Vec<&str>, usize, usize) = match &slot.place {
            Place::Llm { rule, reply, .. } => (vec!["llm"], *rule, *reply),
            Place::Executor { name, rule, reply } => (vec!["executor", name], *rule, *reply),
        };
        if let Some(new) = replacement(&case.reply)? {
            *reply_at(&mut table, &path, rule, reply)? = new;
        }
        if case.streamed {
            let key = stream_input.ok_or("a streamed case needs `stream_input`")?;
            let input = table
                .entry("input")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(input) = input.as_table_mut() {
                input.insert(key.to_string(), toml::Value::Boolean(true));
            }
        }
        if let (Some(n), Place::Llm { agent, .. }) = (case.stream_cut, &slot.place) {
            let mut fault = toml::Table::new();
            fault.insert("at".into(), "llm".into());
            if let Some(agent) = agent {
                let mut when = toml::Table::new();
                when.insert("agent".into(), agent.as_str().into());
                fault.insert("when".into(), toml::Value::Table(when));
            }
            let mut what = toml::Table::new();
            what.insert("stream_cut_after".into(), i64::from(n).into());
            fault.insert("fault".into(), toml::Value::Table(what));
            fault.insert("times".into(), 1.into());
            let chaos = table
                .entry("chaos")
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            if let Some(list) = chaos.as_array_mut() {
                list.push(toml::Value::Table(fault));
            }
        }
        table.insert("expect".into(), toml::Value::Table(expect));
        Ok(table)
    }
}

/// The reply table at `path[rule].reply[reply]` (a lone reply table is reply 0).
fn reply_at<'a>(
    table: &'a mut toml::Table,
    path: &[&str],
    rule: usize,
    reply: usize,
) -> Result<&'a mut toml::Table, String> {
    let missing = || {
        format!(
            "no reply {} of `{}[{}]` in the file",
            reply + 1,
            path.join("."),
            rule + 1
        )
    };
    let mut node: &mut toml::Table = table;
    let (last, parents) = path.split_last().ok_or_else(missing)?;
    for key in parents {
        node = node
            .get_mut(*key)
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(missing)?;
    }
    let rules = node
        .get_mut(*last)
        .and_then(toml::Value::as_array_mut)
        .ok_or_else(missing)?;
    let rule = rules
        .get_mut(rule)
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(missing)?;
    match rule.get_mut("reply").ok_or_else(missing)? {
        toml::Value::Array(list) => list
            .get_mut(reply)
            .and_then(toml::Value::as_table_mut)
            .ok_or_else(missing),
        toml::Value::Table(t) if reply == 0 => Ok(t),
        _ => Err(missing()),
    }
}

fn inline_llm_file(raw: &mut toml::Table, original: &Original) -> Result<(), String> {
    if raw.remove("json_file").is_some()
        && let Original::Json(v) = original
    {
        match to_toml(v) {
            Ok(t) => raw.insert("json".into(), t),
            // JSON TOML cannot hold (null): the same bytes as text.
            Err(_) => raw.insert("text".into(), v.to_string().into()),
        };
    }
    if raw.remove("text_file").is_some()
        && let Original::Text(t) = original
    {
        raw.insert("text".into(), t.as_str().into());
    }
    Ok(())
}

fn to_toml(v: &Value) -> Result<toml::Value, String> {
    toml::Value::try_from(v).map_err(|e| format!("`{v}` cannot be written in TOML: {e}"))
}

/// The reply table of a replacement; None keeps the scripted reply.
fn replacement(r: &Replacement) -> Result<Option<toml::Table>, String> {
    let mut t = toml::Table::new();
    match r {
        Replacement::Original => return Ok(None),
        Replacement::Text {
            text,
            finish_reason,
        } => {
            t.insert("text".into(), text.as_str().into());
            if let Some(f) = finish_reason {
                t.insert("finish_reason".into(), f.as_str().into());
            }
        }
        Replacement::ToolCalls(calls) => {
            let calls = calls
                .iter()
                .map(|(name, args)| {
                    let mut c = toml::Table::new();
                    c.insert("name".into(), name.as_str().into());
                    c.insert("arguments".into(), args.as_str().into());
                    toml::Value::Table(c)
                })
                .collect();
            t.insert("tool_calls".into(), toml::Value::Array(calls));
        }
        Replacement::Error { status, message } => {
            let mut e = toml::Table::new();
            e.insert("status".into(), i64::from(*status).into());
            e.insert("message".into(), message.as_str().into());
            t.insert("error".into(), toml::Value::Table(e));
        }
        Replacement::Executor {
            status,
            body,
            delay_ms,
        } => {
            t.insert("json".into(), to_toml(body)?);
            if *status != 200 {
                t.insert("status".into(), i64::from(*status).into());
            }
            if *delay_ms > 0 {
                t.insert("delay".into(), format!("{delay_ms}ms").into());
            }
        }
    }
    Ok(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::VariantKind;

    const FILE: &str = r#"
name = "n"
[input]
prompt = "p"
[[llm]]
when.agent = "planner"
reply = { json = { subtasks = ["a"] } }
[[llm]]
when.agent = "critic"
reply = [{ text = "one" }, { error = { status = 503 } }]
[[executor.sandbox]]
reply = { success = true }
[expect]
status = "completed"
[adversarial]
vary = ["llm.critic", "executor"]
"#;

    fn base() -> Base {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, FILE).unwrap();
        let scenario = crate::scenario::load_one(dir.path(), &file).unwrap();
        let vary = &scenario.spec.adversarial.as_ref().unwrap().vary;
        Base::new(&scenario, FILE, vary).unwrap()
    }

    #[test]
    fn the_slots_are_the_replies_vary_names() {
        let base = base();
        let places: Vec<String> = base.slots.iter().map(|s| s.place.label()).collect();
        assert_eq!(
            places,
            [
                "llm[2] (critic), reply 1",
                "llm[2] (critic), reply 2",
                "executor.sandbox[1], reply 1"
            ]
        );
        assert_eq!(base.slots[1].original, Original::Error(503));
        assert_eq!(base.expect["status"].as_str(), Some("completed"));
    }

    #[test]
    fn a_case_replaces_one_reply_and_can_stream_and_cut() {
        let base = base();
        let case = Case {
            kind: VariantKind::Hostile,
            slot: 1,
            reply: Replacement::Text {
                text: "{}".into(),
                finish_reason: Some("length".into()),
            },
            streamed: true,
            stream_cut: Some(2),
            what: String::new(),
        };
        let mut expect = toml::Table::new();
        expect.insert("exit_code".into(), 0.into());
        let t = base.with_case(&case, Some("stream"), expect).unwrap();
        let text = toml::to_string(&t).unwrap();
        let spec: crate::scenario::ScenarioFile = toml::from_str(&text).unwrap();
        let critic = &spec.llm[1].reply.0;
        assert!(matches!(&critic[0].body, LlmBodySpec::Text(t) if t == "one"));
        assert!(matches!(&critic[1].body, LlmBodySpec::Text(t) if t == "{}"));
        assert_eq!(critic[1].finish_reason.as_deref(), Some("length"));
        assert_eq!(spec.input.unwrap()["stream"], true);
        assert_eq!(spec.chaos.len(), 1);
        assert_eq!(spec.chaos[0].when.agent.as_deref(), Some("critic"));
        assert_eq!(spec.expect.exit_code, Some(0));
        assert!(spec.adversarial.is_none(), "the written case is standalone");
        // A streamed case without `stream_input` is a mistake, not a silent no-op.
        assert!(base.with_case(&case, None, toml::Table::new()).is_err());
    }
}
