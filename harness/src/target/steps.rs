//! The step engine: runs a scenario's `[[step]]`s against an `http` target's service, in
//! order — each a request, checks on its status and body, captures into variables, and
//! optionally a poll until a condition holds (format: `scenario::StepSpec`).
//!
//! ```text
//! for each step: expand {vars.NAME} ─▶ request (poll: repeat until `until` holds)
//!                ─▶ status + checks ─▶ captures ─▶ vars
//! ```
//!
//! The result is one JSON document, the scenario's output:
//! `{ "result": <last body>, "vars": {…}, "steps": [{ name, request, status, body, polls }] }`,
//! plus `"failed": { "step", "why" }` when a step did not hold (the run stops there).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::scenario::{Predicate, StepSpec};
use crate::template::Piece;

/// Time between polls when a step names none.
const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);

/// The key of the failure in the output document.
pub(crate) const FAILED: &str = "failed";

/// What the steps did: the output document (a step stopped by the scenario's timeout is
/// a failed step like any other, so the document says which step was waiting for what).
pub(crate) struct StepsOutcome {
    pub document: Value,
}

/// Runs `steps` against the service at `base`; `headers` go on every request.
pub(crate) async fn run(
    client: &reqwest::Client,
    base: &str,
    headers: &[(String, String)],
    steps: &[StepSpec],
    input: &Value,
    deadline: Instant,
) -> StepsOutcome {
    let mut vars: BTreeMap<String, Value> = BTreeMap::new();
    let mut done: Vec<Value> = Vec::new();
    let mut last = Value::Null;
    for (i, step) in steps.iter().enumerate() {
        let name = step
            .name
            .clone()
            .unwrap_or_else(|| format!("step {}", i + 1));
        let result = run_step(client, base, headers, step, input, &vars, deadline).await;
        let (record, outcome) = match result {
            Ok(r) => r,
            Err(Stop::Failed(why)) => (None, Err(why)),
            Err(Stop::TimedOut(why)) => {
                let why = format!("the scenario's timeout passed: {why}");
                return StepsOutcome {
                    document: document(&last, &vars, done, Some((&name, &why))),
                };
            }
        };
        if let Some(record) = record {
            last = record.body.clone();
            done.push(json!({
                "name": name,
                "request": record.request,
                "status": record.status,
                "body": record.body,
                "polls": record.polls,
            }));
        }
        match outcome {
            Ok(captured) => vars.extend(captured),
            Err(why) => {
                return StepsOutcome {
                    document: document(&last, &vars, done, Some((&name, &why))),
                };
            }
        }
    }
    StepsOutcome {
        document: document(&last, &vars, done, None),
    }
}

fn document(
    last: &Value,
    vars: &BTreeMap<String, Value>,
    steps: Vec<Value>,
    failed: Option<(&str, &str)>,
) -> Value {
    let mut doc = json!({ "result": last, "vars": vars, "steps": steps });
    if let Some((step, why)) = failed {
        doc[FAILED] = json!({ "step": step, "why": why });
    }
    doc
}

/// A response as the document records it.
struct Record {
    request: String,
    status: u16,
    body: Value,
    polls: u32,
}

enum Stop {
    /// The step could not be sent as written (a variable it uses was never captured).
    Failed(String),
    /// The scenario's timeout passed during the step.
    TimedOut(String),
}

type StepResult = (Option<Record>, Result<BTreeMap<String, Value>, String>);

async fn run_step(
    client: &reqwest::Client,
    base: &str,
    headers: &[(String, String)],
    step: &StepSpec,
    input: &Value,
    vars: &BTreeMap<String, Value>,
    deadline: Instant,
) -> Result<StepResult, Stop> {
    let line = expand_text(&step.request, vars).map_err(Stop::Failed)?;
    let (method, path) = line
        .trim()
        .split_once(' ')
        .map_or(("GET", line.trim()), |(m, p)| (m, p.trim()));
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| Stop::Failed(format!("`{method}` is not an HTTP method")))?;
    let mut all_headers: Vec<(String, String)> = headers.to_vec();
    for (k, v) in &step.headers {
        all_headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
        let v = expand_text(v, vars).map_err(Stop::Failed)?;
        if !v.is_empty() {
            all_headers.push((k.clone(), v));
        }
    }
    let body = if step.input {
        Some(Body::Json(input.clone()))
    } else if let Some(raw) = &step.body {
        Some(Body::Raw(expand_text(raw, vars).map_err(Stop::Failed)?))
    } else {
        step.json
            .as_ref()
            .map(|j| expand_json(j, vars).map(Body::Json))
            .transpose()
            .map_err(Stop::Failed)?
    };
    let request = format!("{method} {path}");
    let url = format!("{base}{path}");

    let poll_until = step.poll.as_ref().map(|p| {
        let within = p
            .within
            .map_or(deadline, |w| (Instant::now() + w).min(deadline));
        (p, within)
    });
    let mut polls = 0u32;
    loop {
        polls += 1;
        let sent = send(
            client,
            method.clone(),
            &url,
            &all_headers,
            body.as_ref(),
            deadline,
        )
        .await;
        let (status, response_headers, body) = match sent {
            Ok(r) => r,
            Err(e) if Instant::now() >= deadline => {
                return Err(Stop::TimedOut(format!("`{request}`: {e}")));
            }
            Err(e) => match &poll_until {
                // A service that is not answering yet may answer on the next poll.
                Some((p, within)) if Instant::now() < *within => {
                    pause(p.interval, *within).await;
                    continue;
                }
                _ => {
                    return Ok((None, Err(format!("`{request}` got no response: {e}"))));
                }
            },
        };
        let record = Record {
            request: request.clone(),
            status,
            body: body.clone(),
            polls,
        };
        if let Some((p, within)) = &poll_until {
            let unmet = status_problem(step.status.as_ref(), status)
                .or_else(|| body_problem(&p.until, &body));
            if let Some(why) = unmet {
                if Instant::now() >= *within {
                    let bound = p.within.map_or_else(
                        || "the scenario's timeout".to_string(),
                        |w| humantime::format_duration(w).to_string(),
                    );
                    let why = format!(
                        "polled `{request}` {polls} times for {bound} and the condition never held: {why}; last response: {status} {}",
                        excerpt(&body)
                    );
                    return Ok((Some(record), Err(why)));
                }
                pause(p.interval, *within).await;
                continue;
            }
        }
        if let Some(why) = status_problem(step.status.as_ref(), status) {
            return Ok((
                Some(record),
                Err(format!("`{request}`: {why}; body: {}", excerpt(&body))),
            ));
        }
        if let Some(why) = body_problem(&step.check, &body) {
            return Ok((Some(record), Err(format!("`{request}`: {why}"))));
        }
        if let Some(why) = header_problem(&step.check_header, &response_headers) {
            return Ok((Some(record), Err(format!("`{request}`: {why}"))));
        }
        let mut captured = BTreeMap::new();
        for (name, expr) in &step.capture {
            match query(expr, &body).into_iter().next() {
                Some(v) => {
                    captured.insert(name.clone(), v);
                }
                None => {
                    return Ok((
                        Some(record),
                        Err(format!(
                            "`{request}`: capture `{name}`: `{expr}` matched nothing in {}",
                            excerpt(&body)
                        )),
                    ));
                }
            }
        }
        return Ok((Some(record), Ok(captured)));
    }
}

async fn pause(interval: Option<Duration>, until: Instant) {
    // Polling is the protocol here, not a stand-in for synchronisation.
    tokio::time::sleep(
        interval
            .unwrap_or(DEFAULT_INTERVAL)
            .min(until.saturating_duration_since(Instant::now())),
    )
    .await;
}

fn status_problem(want: Option<&Predicate>, status: u16) -> Option<String> {
    match want {
        None if (200..300).contains(&status) => None,
        None => Some(format!("status: expected a 2xx, got {status}")),
        Some(p) => p
            .eval(Some(&Value::from(status)))
            .err()
            .map(|why| format!("status: {why}")),
    }
}

/// The first entry of `checks` (JSONPath → predicate) that `body` does not meet.
fn body_problem(checks: &BTreeMap<String, Predicate>, body: &Value) -> Option<String> {
    for (expr, pred) in checks {
        let found = query(expr, body);
        let actual = match found.len() {
            0 => None,
            1 => found.into_iter().next(),
            _ => Some(Value::Array(found)),
        };
        if let Err(why) = pred.eval(actual.as_ref()) {
            return Some(format!("`{expr}`: {why}"));
        }
    }
    None
}

/// The first entry of `checks` (header name → predicate) that the headers do not meet.
fn header_problem(
    checks: &BTreeMap<String, Predicate>,
    headers: &reqwest::header::HeaderMap,
) -> Option<String> {
    for (name, pred) in checks {
        let actual = headers.get(name.as_str()).map(header_value);
        if let Err(why) = pred.eval(actual.as_ref()) {
            return Some(format!("header `{name}`: {why}"));
        }
    }
    None
}

/// A header's value as a predicate sees it: a number when it is one (`Retry-After: 5`),
/// else its text.
fn header_value(value: &reqwest::header::HeaderValue) -> Value {
    let text = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
    match serde_json::from_str::<Value>(&text) {
        Ok(n @ Value::Number(_)) => n,
        _ => Value::String(text),
    }
}

fn query(expr: &str, body: &Value) -> Vec<Value> {
    // Checked when the scenario was loaded.
    match serde_json_path::JsonPath::parse(expr) {
        Ok(path) => path.query(body).all().into_iter().cloned().collect(),
        Err(_) => Vec::new(),
    }
}

fn excerpt(body: &Value) -> String {
    let text = body.to_string();
    if text.chars().count() > 300 {
        format!("{}…", text.chars().take(300).collect::<String>())
    } else {
        text
    }
}

/// `{vars.NAME}` and `${VAR}` in a string.
fn expand_text(text: &str, vars: &BTreeMap<String, Value>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in crate::template::pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Env { name, .. } => out.push_str(&std::env::var(name).map_err(|_| {
                format!("the harness's environment has no `{name}` (hint: export it)")
            })?),
            Piece::Key { key, at } => match key.strip_prefix("vars.") {
                Some(name) => match vars.get(name) {
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v) => out.push_str(&v.to_string()),
                    None => {
                        return Err(format!(
                            "`{{vars.{name}}}` was not captured by an earlier step (captured: {})",
                            names(vars)
                        ));
                    }
                },
                None => out.push_str(&text[at]),
            },
        }
    }
    Ok(out)
}

fn names(vars: &BTreeMap<String, Value>) -> String {
    if vars.is_empty() {
        "none".into()
    } else {
        vars.keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `{vars.NAME}` in the strings of a JSON body; a string that is only the placeholder
/// takes the captured value as it is (a number stays a number).
fn expand_json(value: &Value, vars: &BTreeMap<String, Value>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => {
            let pieces = crate::template::pieces(s);
            match pieces.as_slice() {
                [Piece::Key { key, .. }] if key.starts_with("vars.") => {
                    let name = &key["vars.".len()..];
                    vars.get(name).cloned().ok_or_else(|| {
                        format!(
                            "`{{vars.{name}}}` was not captured by an earlier step (captured: {})",
                            names(vars)
                        )
                    })?
                }
                _ => Value::String(expand_text(s, vars)?),
            }
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| expand_json(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expand_json(v, vars)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// A step's request body.
enum Body {
    Json(Value),
    /// Sent as it is.
    Raw(String),
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(String, String)],
    body: Option<&Body>,
    deadline: Instant,
) -> Result<(u16, reqwest::header::HeaderMap, Value), reqwest::Error> {
    let mut req = client.request(method, url).timeout(
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1)),
    );
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match body {
        Some(Body::Json(b)) => req = req.json(b),
        Some(Body::Raw(text)) => req = req.body(text.clone()),
        None => {}
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let response_headers = resp.headers().clone();
    let bytes = resp.bytes().await?;
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        if bytes.is_empty() {
            Value::Null
        } else {
            Value::String(String::from_utf8_lossy(&bytes).into_owned())
        }
    });
    Ok((status, response_headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_in_text_and_keep_their_type_in_json() {
        let vars = BTreeMap::from([
            ("id".to_string(), json!("r-1")),
            ("n".to_string(), json!(3)),
        ]);
        assert_eq!(
            expand_text("POST /runs/{vars.id}/approval?n={vars.n}", &vars).unwrap(),
            "POST /runs/r-1/approval?n=3"
        );
        assert_eq!(
            expand_json(
                &json!({"n": "{vars.n}", "s": "id={vars.id}", "k": "{other}"}),
                &vars
            )
            .unwrap(),
            json!({"n": 3, "s": "id=r-1", "k": "{other}"})
        );
        let e = expand_text("/runs/{vars.nope}", &vars).unwrap_err();
        assert!(
            e.contains("`{vars.nope}` was not captured") && e.contains("`id`"),
            "{e}"
        );
    }

    #[test]
    fn header_checks_read_numbers_as_numbers_and_absent_headers_as_nothing() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        headers.insert("www-authenticate", "Bearer realm=\"x\"".parse().unwrap());
        let checks = |pairs: Value| -> BTreeMap<String, Predicate> {
            serde_json::from_value(pairs).unwrap()
        };
        assert!(
            header_problem(
                &checks(
                    json!({"Retry-After": {"ge": 1}, "WWW-Authenticate": {"contains": "Bearer"}})
                ),
                &headers
            )
            .is_none()
        );
        let why = header_problem(&checks(json!({"Retry-After": {"gt": 10}})), &headers).unwrap();
        assert!(
            why.starts_with("header `Retry-After`:") && why.contains('7'),
            "{why}"
        );
        assert!(
            header_problem(&checks(json!({"X-Absent": {"exists": false}})), &headers).is_none()
        );
        assert!(header_problem(&checks(json!({"X-Absent": "v"})), &headers).is_some());
    }

    #[test]
    fn status_defaults_to_any_2xx() {
        assert!(status_problem(None, 204).is_none());
        assert_eq!(
            status_problem(None, 401).unwrap(),
            "status: expected a 2xx, got 401"
        );
        let want: Predicate = serde_json::from_value(json!(401)).unwrap();
        assert!(status_problem(Some(&want), 401).is_none());
        assert!(status_problem(Some(&want), 200).is_some());
    }
}
