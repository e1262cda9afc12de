//! Suites that scale (issue 10): matrices, folder defaults, paths from any working
//! directory, implied gates, `[[step]]`s.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::{harness, results, run_harness, stderr};

const PACK: &str = "tests/fixtures/suite_pack";

/// (id, outcome, seed, target) of every scenario, in report order.
fn rows(r: &serde_json::Value) -> Vec<(String, String, u64, String)> {
    r["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
                s["seed"].as_u64().unwrap(),
                s["target"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_3_by_4_matrix_less_2_excluded_is_10_testcases_and_its_shards_merge_to_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| tmp.path().join(name);
    let run = |extra: &[&str], out: &Path| {
        let mut args = vec![PACK, "--filter", "sweep.toml", "--seed", "7"];
        args.extend_from_slice(extra);
        let o = run_harness(&args, out);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    run(&[], &dir("whole"));

    let junit = std::fs::read_to_string(dir("whole").join("junit.xml")).unwrap();
    let files: Vec<&str> = junit
        .match_indices("<property name=\"id\" value=\"flow/sweep.toml[")
        .map(|(i, _)| {
            let rest = &junit[i + "<property name=\"id\" value=\"".len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(
        junit.matches("file=\"flow/sweep.toml\"").count(),
        10,
        "each case's testcase names its source file"
    );
    let mut expected = BTreeSet::new();
    for agents in ["planner", "planner+coder", "planner+coder+critic"] {
        for batch in [1, 5, 10, 20] {
            expected.insert(format!("flow/sweep.toml[agents={agents},batch={batch}]"));
        }
    }
    expected.remove("flow/sweep.toml[agents=planner,batch=20]");
    expected.remove("flow/sweep.toml[agents=planner+coder+critic,batch=1]");
    assert_eq!(files.len(), 10, "{junit}");
    assert_eq!(
        files.iter().map(|f| f.to_string()).collect::<BTreeSet<_>>(),
        expected,
        "one testcase per case, with the id of its values"
    );
    let names: BTreeSet<&str> = junit
        .match_indices("<testcase name=\"writes a batch [")
        .map(|(i, _)| &junit[i..i + junit[i..].find("\" ").unwrap()])
        .collect();
    assert_eq!(names.len(), 10, "the testcase names tell the cases apart");

    run(&["--partition", "hash:1/2"], &dir("shard1"));
    run(&["--partition", "hash:2/2"], &dir("shard2"));
    let sizes: Vec<usize> = ["shard1", "shard2"]
        .iter()
        .map(|s| rows(&results(&dir(s))).len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 10, "{sizes:?}");
    assert!(
        sizes.iter().all(|&n| n > 0),
        "both shards ran cases: {sizes:?}"
    );
    let o = harness()
        .args(["report", "merge", "--out"])
        .arg(dir("merged"))
        .arg(dir("shard1"))
        .arg(dir("shard2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        rows(&results(&dir("whole"))),
        rows(&results(&dir("merged")))
    );
    // A case's journal is named by its id.
    assert!(
        dir("whole")
            .join("journal/flow__sweep[agents=planner+coder,batch=5].json")
            .is_file()
    );
}

#[test]
fn a_pack_without_target_names_runs_against_its_folders_target_with_shared_defaults() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&[PACK, "--seed", "3"], out.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(out.path());
    let scenarios = r["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 11);
    for s in scenarios {
        assert_eq!(s["target"], "writer", "{}", s["path"]);
        assert!(s["tags"].as_array().unwrap().contains(&"suite-pack".into()));
        // The target's working directory is the folder of its targets.toml.
        let cwd = s["output"]["cwd"].as_str().unwrap();
        assert!(cwd.ends_with("fixtures/suite_pack"), "{cwd}");
    }
    assert!(
        stderr(&o).contains("(target `writer`)"),
        "the console names the target: {}",
        stderr(&o)
    );
}

#[test]
fn the_same_pack_from_three_working_directories_gives_the_same_results() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pack = root.join(PACK).canonicalize().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let runs = [
        (root.to_path_buf(), PACK.to_string()),
        (pack.join("flow"), "..".to_string()),
        (Path::new("/").to_path_buf(), pack.display().to_string()),
    ];
    let mut seen = Vec::new();
    for (i, (cwd, path)) in runs.iter().enumerate() {
        let out = tmp.path().join(i.to_string());
        let o = harness()
            .current_dir(cwd)
            .args(["run", "--seed", "11", "--out"])
            .arg(&out)
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "from {}: {}",
            cwd.display(),
            stderr(&o)
        );
        seen.push(rows(&results(&out)));
    }
    assert_eq!(seen[0].len(), 11);
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
}

#[test]
fn a_scenario_that_names_no_target_next_to_several_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("targets.toml"),
        "[a]\nkind = \"command\"\nprogram = \"true\"\n[b]\nkind = \"command\"\nprogram = \"true\"\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/s.toml"), "name = \"s\"\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&[dir.path().join("sub").to_str().unwrap()], out.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("names no target") && err.contains("`a`, `b`"),
        "{err}"
    );

    // A defaults.toml of the folder says which; a mistake in it is reported in it.
    std::fs::write(dir.path().join("sub/defaults.toml"), "timout = \"1s\"\n").unwrap();
    let o = run_harness(&[dir.path().join("sub").to_str().unwrap()], out.path());
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("sub/defaults.toml:1:1") && err.contains("did you mean `timeout`?"),
        "{err}"
    );
}

#[test]
fn a_gates_file_with_only_a_duration_gate_still_fails_a_failing_scenario() {
    let out = tempfile::tempdir().unwrap();
    let failing = "tests/fixtures/must_fail/wrong_expectation.toml";
    let o = run_harness(
        &[
            failing,
            "--gates",
            "tests/fixtures/gates/duration_only.toml",
        ],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let gates = results(out.path())["gates"].clone();
    let implied = gates
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "every scenario passes (implied)")
        .expect("the implied gate is in the report");
    assert_eq!(
        (implied["critical"].as_bool(), implied["passed"].as_bool()),
        (Some(true), Some(false))
    );
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.contains("every scenario passes (implied)"));

    // Saying so explicitly drops it.
    let o = run_harness(
        &[
            failing,
            "--gates",
            "tests/fixtures/gates/duration_only_opted_out.toml",
        ],
        out.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn steps_pass_against_a_service_that_asks_for_approval_and_explain_one_that_skips_it() {
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&["tests/fixtures/steps", "--seed", "1"], out.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = results(out.path());
    let by_id = |id: &str| {
        r["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == id)
            .unwrap_or_else(|| panic!("no {id} in {r}"))
            .clone()
    };
    let good = by_id("approval.toml[service=approval-service]");
    assert_eq!(good["outcome"], "passed", "{}", stderr(&o));
    assert_eq!(good["output"]["steps"].as_array().unwrap().len(), 8);
    assert_eq!(good["output"]["steps"][4]["status"], 401);
    // A raw body that is not JSON reaches the service as it is.
    assert_eq!(good["output"]["steps"][5]["status"], 400);

    let bad = by_id("approval.toml[service=skips-approval]");
    assert_eq!(bad["outcome"], "failed");
    let first = &bad["failures"][0];
    assert_eq!(first["kind"], "step");
    let message = first["message"].as_str().unwrap();
    assert!(
        message.contains("step `wait for approval` failed")
            && message.contains("never held")
            && message.contains("expected `\"waiting_approval\"`, got `\"done\"`"),
        "{message}"
    );
}

#[test]
fn a_step_checks_response_headers_and_says_which_one_did_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["approval_service.py", "targets.toml"] {
        std::fs::copy(
            Path::new("tests/fixtures/steps").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("headers.toml"),
        "name = \"x\"\ntarget = \"approval-service\"\ntimeout = \"10s\"\n\
         [[step]]\nrequest = \"GET /runs/run-1\"\nheaders = { Authorization = \"\" }\nstatus = 401\n\
         check_header.\"WWW-Authenticate\" = { contains = \"Basic\" }\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&[dir.path().to_str().unwrap()], out.path());
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r = results(out.path());
    let message = r["scenarios"][0]["failures"][0]["message"].to_string();
    assert!(
        message.contains("header `WWW-Authenticate`") && message.contains("Bearer realm"),
        "{message}"
    );
}

#[test]
fn a_step_with_two_bodies_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"x\"\n[[step]]\nrequest = \"POST /runs\"\njson = { a = 1 }\nbody = \"{\"\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&[file.to_str().unwrap()], out.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("gives `json` and `body`: a request has one body")
            && err.contains("s.toml:3:"),
        "{err}"
    );
}

#[test]
fn steps_against_a_command_target_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"x\"\ntarget = \"refpipe\"\n[[step]]\nrequest = \"GET /\"\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = run_harness(&[file.to_str().unwrap()], out.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("need an `http` target"),
        "{}",
        stderr(&o)
    );
}

/// Which schema a bundled TOML file follows; None for files of other kinds.
fn schema_of(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    let text = path.to_string_lossy();
    if text.contains("fixtures/invalid") || name == "drill.toml" || text.contains("fixtures/drills")
    {
        return None;
    }
    Some(match name {
        "targets.toml" | "builtin.toml" => "targets",
        "defaults.toml" => "defaults",
        "gates.toml" => "gates",
        _ if text.contains("fixtures/gates") => "gates",
        _ => "scenario",
    })
}

fn toml_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

fn as_json(path: &Path) -> serde_json::Value {
    let value: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::to_value(value).unwrap()
}

#[test]
fn every_bundled_toml_file_validates_against_the_published_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = |kind: &str| {
        let file = root.join(format!("../schemas/{kind}.schema.json"));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        (doc.clone(), jsonschema::validator_for(&doc).unwrap())
    };
    let validators: Vec<(&str, jsonschema::Validator)> =
        ["scenario", "defaults", "targets", "gates"]
            .into_iter()
            .map(|k| (k, schema(k).1))
            .collect();
    let mut files = Vec::new();
    for dir in [
        "../scenarios",
        "../examples",
        "tests/fixtures",
        "src/target",
    ] {
        toml_files(&root.join(dir), &mut files);
    }
    let mut checked = std::collections::BTreeMap::<&str, usize>::new();
    for file in &files {
        let Some(kind) = schema_of(file) else {
            continue;
        };
        let validator = &validators.iter().find(|(k, _)| *k == kind).unwrap().1;
        let doc = as_json(file);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        // Fixtures with a deliberate misspelling must be refused, the rest accepted.
        let misspelt = file
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("misspelt");
        if misspelt {
            assert!(!errors.is_empty(), "{} must be refused", file.display());
            continue;
        }
        assert!(
            errors.is_empty(),
            "{} ({kind}): {errors:#?}",
            file.display()
        );
        *checked.entry(kind).or_default() += 1;
    }
    assert!(
        checked.values().all(|&n| n > 0) && checked.len() == 4,
        "{checked:?}"
    );

    // The schemas bite: a misspelt key and a wrong type are refused.
    let scenario = &validators[0].1;
    assert!(!scenario.is_valid(&as_json(
        &root.join("tests/fixtures/invalid/misspelt_key.toml")
    )));
    assert!(!scenario.is_valid(&serde_json::json!({ "name": "x", "timeout": 5 })));
    assert!(!validators[3].1.is_valid(
        &serde_json::json!({ "gate": [{ "name": "g", "metric": "pass_rat", "target": ">= 1%" }] })
    ));

    // defaults.toml shares its rule and expectation definitions with scenario files.
    let (scenario_doc, _) = schema("scenario");
    let (defaults_doc, _) = schema("defaults");
    assert_eq!(scenario_doc["definitions"], defaults_doc["definitions"]);
}

#[test]
fn stubs_of_a_matrix_file_ask_which_case() {
    let o = harness()
        .args([
            "stubs",
            "../scenarios/refpipe/validation/oversized_prompt.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("makes 3 scenarios") && err.contains("`oversized_prompt.toml[limit=10]`"),
        "{err}"
    );
    assert!(err.contains("--filter '[limit="), "{err}");
}
