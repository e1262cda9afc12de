//! The bare-target floor: `refpipe run` as a process per run against one LLM stub and one
//! executor stub, `--jobs` at a time, with no harness around it. What a suite of the same
//! happy-path scenarios could reach if the harness cost nothing.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use mocks::{
    AgentRecognition, ExecMatch, ExecReply, ExecReplyBody, ExecRule, ExecutorStub,
    ExecutorStubConfig, LlmMatch, LlmReply, LlmRule, LlmStub, LlmStubConfig,
};
use regex::Regex;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use crate::servers::Result;

#[derive(Debug, clap::Args)]
pub struct BareArgs {
    /// The refpipe executable.
    #[arg(long)]
    refpipe: PathBuf,
    /// Runs in all.
    #[arg(long, default_value_t = 200)]
    runs: u32,
    /// Runs at once.
    #[arg(long, default_value_t = 2)]
    jobs: u32,
}

fn agent(name: &str) -> LlmMatch {
    LlmMatch {
        agent: Some(name.into()),
        ..LlmMatch::default()
    }
}

/// The rules of `scenarios/refpipe/flow/happy_path.toml`: every agent answers well the
/// first time, the sandbox succeeds.
fn stubs_config() -> (LlmStubConfig, ExecutorStubConfig) {
    let rule = |id: &str, who: &str, reply: serde_json::Value| LlmRule {
        id: id.into(),
        when: agent(who),
        replies: vec![LlmReply::json(reply)],
    };
    let llm = LlmStubConfig {
        rules: vec![
            rule(
                "llm[1]",
                "planner",
                json!({"subtasks": ["model the blade", "model the hilt", "apply materials"]}),
            ),
            rule(
                "llm[2]",
                "coder",
                json!({"code": "import bpy\nbpy.ops.mesh.primitive_cube_add()", "language": "python"}),
            ),
            rule(
                "llm[3]",
                "critic",
                json!({"score": 8.5, "needs_refinement": false, "issues": []}),
            ),
        ],
        agents: AgentRecognition::new(
            Some("X-Agent-Role"),
            Some(Regex::new(r"^You are the (\w+) agent").expect("a valid regex")),
        ),
        ..LlmStubConfig::default()
    };
    let executor = ExecutorStubConfig {
        name: "sandbox".into(),
        rules: vec![ExecRule {
            id: "executor.sandbox[1]".into(),
            when: ExecMatch::default(),
            replies: vec![ExecReply::new(ExecReplyBody::Outcome {
                success: true,
                artifacts: vec!["sword.blend".into()],
                logs: "rendered in 2.5s".into(),
                errors: Vec::new(),
            })],
        }],
        faults: Vec::new(),
        seed: 0,
    };
    (llm, executor)
}

/// Runs refpipe `--runs` times, `--jobs` at once; prints `{"runs", "completed", "seconds"}`.
pub fn run(args: &BareArgs) -> Result {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let (llm, executor) = stubs_config();
        let llm = LlmStub::start(llm).await?;
        let executor = ExecutorStub::start(executor).await?;
        let env = Arc::new(vec![
            ("OPENAI_BASE_URL", llm.base_url("primary")),
            ("OPENAI_API_KEY", "sk-agent-harness-stub".to_string()),
            ("EXECUTOR_URL", executor.uri()),
            ("REFPIPE_SEED", "1".to_string()),
            ("REFPIPE_BACKOFF_BASE", "5ms".to_string()),
            ("REFPIPE_BACKOFF_MAX", "50ms".to_string()),
            ("REFPIPE_LLM_TIMEOUT", "5s".to_string()),
            ("REFPIPE_EXECUTOR_TIMEOUT", "5s".to_string()),
        ]);
        let input = json!({"prompt": "Create a detailed medieval sword"}).to_string();
        let slots = Arc::new(Semaphore::new(args.jobs.max(1) as usize));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..args.runs {
            let permit = Arc::clone(&slots).acquire_owned().await?;
            let (env, input, refpipe) = (Arc::clone(&env), input.clone(), args.refpipe.clone());
            tasks.spawn(async move {
                let _permit = permit;
                let mut child = tokio::process::Command::new(&refpipe)
                    .arg("run")
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok()?;
                let mut stdin = child.stdin.take()?;
                stdin.write_all(input.as_bytes()).await.ok()?;
                drop(stdin);
                let output = child.wait_with_output().await.ok()?;
                let document: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
                (output.status.success() && document["status"] == "completed").then_some(())
            });
        }
        let mut completed = 0u32;
        while let Some(done) = tasks.join_next().await {
            completed += u32::from(matches!(done, Ok(Some(()))));
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(json!({
            "runs": args.runs,
            "completed": completed,
            "seconds": seconds,
        }))
    })?;
    println!("{report}");
    Ok(())
}
