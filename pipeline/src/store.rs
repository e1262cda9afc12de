//! `serve`'s state directory: one JSON file per run, `run-N.json`, rewritten whole at every
//! change of the run: queued, running, each finished step (with its [`Checkpoint`]), done
//! (with its result document).
//!
//! A write goes to `.run-N.json.tmp`, is fsynced, renamed over `run-N.json`, and the
//! directory is fsynced: a crash leaves the old file or the new one, never half of one.
//! [`Store::open`] reads the directory back. A `run-N.json` that is not a run record (not
//! JSON, another format, a checkpoint that does not add up) is reported and skipped, and
//! left where it is; leftover temporary files are removed. Ids are never reused: the next
//! one is above every `run-N` name in the directory, skipped files included.
//!
//! One process per state directory: two would overwrite each other's runs.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::errors::StoreError;
use crate::flow::Checkpoint;
use crate::progress::Progress;
use crate::request::RunRequest;

/// The version of the record layout, `format` in every file.
const FORMAT: u32 = 1;

/// The id of the `n`th run: `run-N`.
pub(crate) fn run_id(n: u64) -> String {
    format!("run-{n}")
}

/// `N` of a file named `run-N.json`.
fn run_number(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_prefix("run-")?.strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunState {
    Queued,
    Running,
    Done,
}

/// One run as it is saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    /// The version of this layout.
    pub(crate) format: u32,
    pub(crate) id: String,
    pub(crate) request: RunRequest,
    pub(crate) state: RunState,
    /// How many times a process took the run over from one that had stopped.
    pub(crate) resume_count: u32,
    /// Where the run stands; `None` before it started and once it is done.
    pub(crate) checkpoint: Option<Checkpoint>,
    /// The result document, once the run is done.
    pub(crate) result: Option<Value>,
}

impl RunRecord {
    pub(crate) fn new(id: &str, request: &RunRequest, state: RunState, resume_count: u32) -> Self {
        Self {
            format: FORMAT,
            id: id.to_owned(),
            request: request.clone(),
            state,
            resume_count,
            checkpoint: None,
            result: None,
        }
    }

    /// Whether the record, read from `file_name`, is one this process can serve or resume.
    fn check(&self, file_name: &str) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} is not supported (this refpipe reads format {FORMAT})",
                self.format
            ));
        }
        if format!("{}.json", self.id) != file_name {
            return Err(format!("it holds run `{}`", self.id));
        }
        match (self.state, &self.result, &self.checkpoint) {
            (RunState::Done, None, _) => Err("the run is done but has no result".to_owned()),
            (RunState::Queued | RunState::Running, Some(_), _) => {
                Err("the run is not done but has a result".to_owned())
            }
            (_, _, Some(checkpoint)) => checkpoint
                .check()
                .map_err(|problem| format!("its checkpoint is inconsistent: {problem}")),
            _ => Ok(()),
        }
    }
}

/// The state directory.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
}

/// What [`Store::open`] found.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) store: Store,
    /// The runs in the directory, in the order they were submitted.
    pub(crate) runs: Vec<RunRecord>,
    /// The number of the next run id: above every `run-N` in the directory.
    pub(crate) next_number: u64,
}

impl Store {
    /// Creates `dir` if needed and reads the runs in it; reports each file it skips on
    /// `log`. Fails only if the directory itself cannot be created or listed.
    pub(crate) fn open(dir: &Path, log: &Progress) -> Result<Opened, StoreError> {
        let cannot = |source| StoreError::Open {
            dir: dir.to_owned(),
            source,
        };
        fs::create_dir_all(dir).map_err(cannot)?;
        let mut runs = Vec::new();
        let mut highest = 0;
        for entry in fs::read_dir(dir).map_err(cannot)? {
            let entry = entry.map_err(cannot)?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if let Some(n) = temp_target(&name).and_then(run_number) {
                highest = highest.max(n);
                log.say(format_args!(
                    "removing `{}`, a write that did not finish",
                    path.display()
                ));
                if let Err(error) = fs::remove_file(&path) {
                    log.say(format_args!("cannot remove `{}`: {error}", path.display()));
                }
                continue;
            }
            let Some(n) = run_number(&name) else {
                continue;
            };
            highest = highest.max(n);
            match read_record(&path, &name) {
                Ok(record) => runs.push((n, record)),
                Err(reason) => log.say(format_args!("skipping `{}`: {reason}", path.display())),
            }
        }
        runs.sort_by_key(|(n, _)| *n);
        Ok(Opened {
            store: Self {
                dir: dir.to_owned(),
            },
            runs: runs.into_iter().map(|(_, record)| record).collect(),
            next_number: highest + 1,
        })
    }

    /// Saves `record` atomically, replacing the run's previous record.
    pub(crate) async fn save(&self, record: &RunRecord) -> Result<(), StoreError> {
        let dir = self.dir.clone();
        let name = format!("{}.json", record.id);
        let written = match serde_json::to_vec_pretty(record) {
            Ok(bytes) => tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &bytes))
                .await
                .unwrap_or_else(|join| Err(io::Error::other(join))),
            Err(error) => Err(io::Error::other(error)),
        };
        written.map_err(|source| StoreError::Save {
            id: record.id.clone(),
            dir: self.dir.clone(),
            source,
        })
    }
}

/// `run-N.json` for a temporary file `.run-N.json.tmp`.
fn temp_target(file_name: &str) -> Option<&str> {
    file_name.strip_prefix('.')?.strip_suffix(".tmp")
}

fn read_record(path: &Path, file_name: &str) -> Result<RunRecord, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read it ({e})"))?;
    let record: RunRecord =
        serde_json::from_slice(&bytes).map_err(|e| format!("it is not a run record ({e})"))?;
    record.check(file_name)?;
    Ok(record)
}

/// Writes `dir/name` so that it holds either its old bytes or `bytes`, also after a crash.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(name))?;
    // the rename is durable once the directory is
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Step;

    fn request() -> RunRequest {
        RunRequest {
            prompt: "sword".into(),
            max_iterations: 3,
            stream: false,
            language: "python".into(),
        }
    }

    #[test]
    fn run_numbers() {
        assert_eq!(run_number("run-12.json"), Some(12));
        assert_eq!(run_id(12), "run-12");
        for other in [
            "run-.json",
            "run-1.json.tmp",
            "run-+1.json",
            "notes.json",
            "run-1",
        ] {
            assert_eq!(run_number(other), None, "{other}");
        }
        assert_eq!(temp_target(".run-3.json.tmp"), Some("run-3.json"));
    }

    #[tokio::test]
    async fn saved_runs_are_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let opened = Store::open(dir.path(), &Progress::silent()).unwrap();
        assert!(opened.runs.is_empty());
        assert_eq!(opened.next_number, 1);

        let mut running = RunRecord::new("run-10", &request(), RunState::Running, 1);
        running.checkpoint = Some(Checkpoint::start());
        let mut done = RunRecord::new("run-9", &request(), RunState::Done, 0);
        done.result = Some(serde_json::json!({"status": "completed"}));
        for record in [&running, &done] {
            opened.store.save(record).await.unwrap();
        }
        running.checkpoint.as_mut().unwrap().next = Step::Plan;
        opened.store.save(&running).await.unwrap();

        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files are left: {names:?}");
        let reopened = Store::open(dir.path(), &Progress::silent()).unwrap();
        assert_eq!(reopened.runs, [done, running]);
        assert_eq!(reopened.next_number, 11);
    }

    #[test]
    fn bad_files_are_skipped_but_keep_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| fs::write(dir.path().join(name), text).unwrap();
        let record = |id: &str, state: &str, result: &str| {
            format!(
                r#"{{"format": 1, "id": "{id}", "request": {{"prompt": "p"}}, "state": "{state}",
                    "resume_count": 0, "checkpoint": null, "result": {result}}}"#
            )
        };
        write("run-1.json", &record("run-1", "queued", "null"));
        write("run-2.json", r#"{"format": 1, "id": "run-2", "requ"#);
        write("run-3.json", "");
        write("run-4.json", &record("run-5", "queued", "null"));
        write("run-6.json", &record("run-6", "done", "null"));
        write(
            "run-7.json",
            &record("run-7", "running", "{}").replace("1,", "2,"),
        );
        write(".run-8.json.tmp", "half");
        write("notes.txt", "not ours");
        let log = Progress::capture();
        let opened = Store::open(dir.path(), &log).unwrap();
        assert_eq!(opened.runs.len(), 1);
        assert_eq!(opened.runs[0].id, "run-1");
        assert_eq!(opened.runs[0].request.max_iterations, 3);
        assert_eq!(opened.next_number, 9);
        let said = log.captured();
        for expected in [
            "run-2.json`: it is not a run record (EOF while parsing",
            "run-3.json`: it is not a run record (EOF while parsing",
            "run-4.json`: it holds run `run-5`",
            "run-6.json`: the run is done but has no result",
            "run-7.json`: format 2 is not supported (this refpipe reads format 1)",
            ".run-8.json.tmp`, a write that did not finish",
        ] {
            assert!(said.contains(expected), "{expected}\n{said}");
        }
        assert!(!dir.path().join(".run-8.json.tmp").exists());
        assert!(dir.path().join("run-2.json").exists(), "skipped files stay");
    }

    #[test]
    fn an_unusable_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        let error = Store::open(&file.join("state"), &Progress::silent()).unwrap_err();
        assert!(error.to_string().starts_with("cannot use `"), "{error}");
    }
}
