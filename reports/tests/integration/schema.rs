//! `results.json` against the JSON Schema the crate publishes,
//! `schema/results.schema.json`: the fixture report validates (and the hostile test's
//! reports do), and the schema can fail: a missing key, a bad enum value, a key it does
//! not know, a metric of the wrong shape are each rejected.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::fixture::basic_report;
use crate::tools::crate_file;

/// The published schema, compiled once; the schema itself must be valid draft 2020-12.
pub fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = crate_file("schema/results.schema.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text).unwrap();
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("the schema is not valid draft 2020-12: {e}");
        }
        jsonschema::draft202012::new(&schema).unwrap()
    })
}

/// The errors validating `document` gives, as `path: message` lines.
pub fn errors(document: &Value) -> Vec<String> {
    validator()
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Asserts that the `results.json` text `json` validates.
pub fn assert_valid(json: &str) {
    let document: Value = serde_json::from_str(json).unwrap();
    let errors = errors(&document);
    assert!(errors.is_empty(), "{errors:#?}\nin\n{json}");
}

fn fixture_document() -> Value {
    serde_json::from_str(&reports::json::render(&basic_report())).unwrap()
}

#[test]
fn the_fixture_validates() {
    assert_valid(&reports::json::render(&basic_report()));
}

#[test]
fn a_minimal_report_validates() {
    let mut report = basic_report();
    report.scenarios.clear();
    report.gates.clear();
    report.partition = None;
    assert_valid(&reports::json::render(&report));
}

#[test]
fn a_missing_required_key_is_rejected() {
    let mut doc = fixture_document();
    doc["summary"].as_object_mut().unwrap().remove("flaky");
    let errs = errors(&doc);
    assert!(
        errs.iter()
            .any(|e| e.starts_with("/summary: ") && e.contains("flaky")),
        "{errs:#?}"
    );

    let mut doc = fixture_document();
    doc["scenarios"][3]
        .as_object_mut()
        .unwrap()
        .remove("failed_attempts");
    assert!(!errors(&doc).is_empty());
}

#[test]
fn a_bad_enum_value_is_rejected() {
    let mut doc = fixture_document();
    doc["scenarios"][0]["outcome"] = json!("exploded");
    let errs = errors(&doc);
    assert!(
        errs.iter().any(|e| e.starts_with("/scenarios/0/outcome: ")),
        "{errs:#?}"
    );

    let mut doc = fixture_document();
    doc["summary"]["verdict"] = json!("PASS");
    assert!(!errors(&doc).is_empty());
}

#[test]
fn unknown_keys_and_wrong_types_are_rejected() {
    let mut doc = fixture_document();
    doc["gates"][0]["colour"] = json!("red");
    assert!(!errors(&doc).is_empty());

    let mut doc = fixture_document();
    doc["scenarios"][0]["duration"] = json!(-1.0);
    assert!(!errors(&doc).is_empty());

    let mut doc = fixture_document();
    doc["schema_version"] = json!(1);
    assert!(!errors(&doc).is_empty());
}

#[test]
fn the_fixture_has_metrics_and_the_schema_holds_them_to_their_shape() {
    let doc = fixture_document();
    let metrics = &doc["scenarios"][5]["metrics"];
    for key in [
        "end_to_end",
        "llm",
        "time_to_first_token",
        "inter_token",
        "executor",
        "memory",
        "load",
        "tokens_per_run",
        "cost_per_run",
        "thresholds",
    ] {
        assert!(metrics.get(key).is_some(), "{key} in {metrics}");
    }
    assert_eq!(metrics["llm"]["planner"]["unit"], "us");
    assert_eq!(metrics["llm"]["planner"]["count"], 1000);
    // Scenarios that measured nothing have no `metrics` key.
    assert!(doc["scenarios"][1].get("metrics").is_none());

    /// Breaks the metrics of a document in one way.
    type Breaker = fn(&mut Value);
    let rejected: [(&str, Breaker); 7] = [
        ("a histogram in milliseconds", |m| {
            m["end_to_end"]["unit"] = json!("ms")
        }),
        ("a histogram without its encoding", |m| {
            m["llm"]["planner"].as_object_mut().unwrap().remove("hdr");
        }),
        ("an encoding that is not base64", |m| {
            m["inter_token"]["hdr"] = json!("not base64!")
        }),
        ("a negative percentile", |m| {
            m["end_to_end"]["p99"] = json!(-1)
        }),
        ("a timeline point of three numbers", |m| {
            m["memory"]["timeline"][0] = json!([0.0, 1, 2])
        }),
        ("load without its model", |m| {
            m["load"].as_object_mut().unwrap().remove("model");
        }),
        ("a key metrics do not have", |m| m["gpu"] = json!({})),
    ];
    for (what, break_it) in rejected {
        let mut doc = fixture_document();
        break_it(&mut doc["scenarios"][5]["metrics"]);
        assert!(!errors(&doc).is_empty(), "{what} was accepted");
    }
}

#[test]
fn output_may_be_any_json() {
    for output in [json!(null), json!(1), json!("x"), json!([1, {"a": null}])] {
        let mut doc = fixture_document();
        doc["scenarios"][0]["output"] = output;
        assert_eq!(errors(&doc), Vec::<String>::new());
    }
}
