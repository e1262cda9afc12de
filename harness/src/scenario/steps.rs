//! `[[step]]`: a multi-step interaction with an `http` target, instead of the single
//! submit-and-poll (Hurl's requests, captures and asserts are the model).
//!
//! ```toml
//! [[step]]
//! name = "submit"
//! request = "POST /runs"
//! input = true                            # the body is the scenario's [input] as JSON
//! status = 202
//! capture.run = "$.id"                    # later: {vars.run}
//!
//! [[step]]
//! name = "wait for approval"
//! request = "GET /runs/{vars.run}"
//! poll = { until."$.state" = "waiting_approval", interval = "20ms", within = "5s" }
//!
//! [[step]]
//! name = "approve"
//! request = "POST /runs/{vars.run}/approval"
//! json = { approved = true, by = "{vars.reviewer}" }
//! status = 200
//!
//! [[step]]
//! name = "no token, no access"
//! request = "GET /runs/{vars.run}"
//! headers = { Authorization = "" }        # an empty value removes the target's header
//! status = 401
//! check."$.error" = { contains = "token" }
//! ```
//!
//! Each step's response must have a 2xx status unless `status` says otherwise. `{vars.NAME}`
//! works in `request`, `headers` and `json`; the target's `http.headers` go on every
//! request. `body = "{not json"` sends a raw body instead (one of `input`, `json`, `body`);
//! `check_header."Retry-After" = { ge = 1 }` checks a response header. The scenario's output document is
//! `{ "result": <last response body>, "vars": {…}, "steps": [{ name, status, body, polls }] }`,
//! so `[expect]` reads `output."$.vars.run"` or `output."$.result.state"`, and `status`
//! is read from `result`. The first step that fails ends the run, and says why.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::predicate::Predicate;
use super::serde_util::deserialize_opt_duration;

/// One request of a multi-step interaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// How reports name the step; `step N` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// `"METHOD /path"`; a bare path means GET.
    #[serde(deserialize_with = "super::serde_util::text")]
    pub request: String,
    /// Headers over the target's, `{vars.NAME}` and `${VAR}` expanded; `""` removes one.
    #[serde(default, deserialize_with = "super::serde_util::text_map")]
    pub headers: BTreeMap<String, String>,
    /// A JSON body (strings may hold `{vars.NAME}`).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Send the scenario's `[input]` as the JSON body.
    #[serde(default)]
    pub input: bool,
    /// A raw body, sent as it is (malformed JSON, a form, plain text), with no
    /// `Content-Type` unless `headers` gives one; `{vars.NAME}` expands.
    #[serde(default)]
    pub body: Option<String>,
    /// The expected status; any 2xx when absent.
    #[serde(default)]
    pub status: Option<Predicate>,
    /// Variables from the response body: name → JSONPath (the first match).
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Checks on the response body: JSONPath → predicate.
    #[serde(default)]
    pub check: BTreeMap<String, Predicate>,
    /// Checks on the response headers: name (any case) → predicate over its value; a
    /// value that is a JSON number compares as a number; an absent header is nothing
    /// (`{ exists = false }` holds).
    #[serde(default)]
    pub check_header: BTreeMap<String, Predicate>,
    /// Repeat the request until a condition holds.
    #[serde(default)]
    pub poll: Option<PollSpec>,
}

/// Polling: the request is repeated every `interval` until every `until` entry holds,
/// for at most `within` (and never past the scenario's timeout).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollSpec {
    /// JSONPath → predicate, over the response body.
    pub until: BTreeMap<String, Predicate>,
    /// 50ms when absent.
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    pub interval: Option<Duration>,
    /// The scenario's timeout when absent.
    #[serde(default, deserialize_with = "deserialize_opt_duration")]
    pub within: Option<Duration>,
}

impl StepSpec {
    /// The step's bodies, when it gives more than one of `input`, `json` and `body`.
    pub fn conflicting_bodies(&self) -> Option<String> {
        let given: Vec<&str> = [
            ("input", self.input),
            ("json", self.json.is_some()),
            ("body", self.body.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        (given.len() > 1).then(|| {
            given
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        })
    }

    /// Every JSONPath the step holds, for checking when the file is loaded.
    pub fn json_paths(&self) -> impl Iterator<Item = &str> {
        self.capture
            .values()
            .map(String::as_str)
            .chain(self.check.keys().map(String::as_str))
            .chain(
                self.poll
                    .iter()
                    .flat_map(|p| p.until.keys().map(String::as_str)),
            )
    }
}
