//! [`write_all`]: every report of a run, written atomically into one directory.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::errors::WriteError;
use crate::model::RunReport;
use crate::{atomic, html, journal, json, junit, markdown};

/// The JUnit XML report's file name.
pub const JUNIT_FILE: &str = "junit.xml";
/// The JSON report's file name.
pub const RESULTS_FILE: &str = "results.json";
/// The Markdown summary's file name.
pub const SUMMARY_FILE: &str = "summary.md";
/// The HTML report's file name.
pub const HTML_FILE: &str = "report.html";
/// The folder, inside the output directory, that holds per-scenario journals.
pub const JOURNAL_DIR: &str = "journal";

/// The files [`write_all`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// `<dir>/junit.xml`
    pub junit: PathBuf,
    /// `<dir>/results.json`
    pub results: PathBuf,
    /// `<dir>/summary.md`
    pub summary: PathBuf,
    /// `<dir>/report.html`
    pub html: PathBuf,
    /// `<dir>/journal/<scenario>.json`, one per scenario, in the report's order.
    pub journals: Vec<PathBuf>,
}

impl Written {
    /// Every path written: the four reports, then the journals.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        [&self.junit, &self.results, &self.summary, &self.html]
            .into_iter()
            .chain(&self.journals)
            .map(PathBuf::as_path)
    }
}

/// Writes `junit.xml`, `results.json`, `summary.md`, `report.html` and
/// `journal/<scenario>.json` for `report` into `dir`, creating `dir` and `dir/journal`
/// if needed.
///
/// Each file is written to a temporary file beside it and renamed into place, so a reader
/// (or a run killed mid-write) sees the previous version or the new one, never a mix.
/// The four reports are written first, so they are there even if a journal fails.
///
/// A journal's name is the scenario's path with `.toml` stripped and `/` replaced by
/// `__` (`refpipe/chaos/retry.toml` → `journal/refpipe__chaos__retry.json`), with `-2`,
/// `-3`, … added if two paths would share a name. Journals in `dir/journal` that this run
/// did not write (left by an earlier run with other scenarios) are removed, so the folder
/// always describes one run.
///
/// Stops at the first error; files already written stay.
pub fn write_all(report: &RunReport, dir: &Path) -> Result<Written, WriteError> {
    let journal_dir = dir.join(JOURNAL_DIR);
    fs::create_dir_all(&journal_dir).map_err(|source| WriteError::CreateDir {
        path: journal_dir.clone(),
        source,
    })?;

    // The four reports are one set: all staged first, then renamed into place. If any
    // cannot be written, the earlier run's reports are removed rather than left beside
    // some of this run's, where a reader would take them for one run.
    let renderers: [(&str, Renderer); 4] = [
        (JUNIT_FILE, junit::render),
        (RESULTS_FILE, json::render),
        (SUMMARY_FILE, markdown::render),
        (HTML_FILE, html::render),
    ];
    let mut staged = Vec::with_capacity(renderers.len());
    for (name, render) in renderers {
        match atomic::stage(&dir.join(name), render(report).as_bytes()) {
            Ok(file) => staged.push(file),
            Err(e) => {
                drop(staged);
                remove_reports(dir);
                return Err(e);
            }
        }
    }
    for file in staged {
        if let Err(e) = file.commit() {
            remove_reports(dir);
            return Err(e);
        }
    }
    let [junit, results, summary, html] =
        [JUNIT_FILE, RESULTS_FILE, SUMMARY_FILE, HTML_FILE].map(|name| dir.join(name));

    let mut taken = HashSet::new();
    let mut journals = Vec::with_capacity(report.scenarios.len());
    for scenario in &report.scenarios {
        let name = unique_name(&journal::file_stem(&scenario.path), &mut taken);
        let path = journal_dir.join(name);
        atomic::write(&path, journal::render(scenario).as_bytes())?;
        journals.push(path);
    }
    remove_stale_journals(&journal_dir, &taken)?;

    Ok(Written {
        junit,
        results,
        summary,
        html,
        journals,
    })
}

/// Removes the four reports from `dir`, as far as it can: after a failed write, no
/// report is better than a mix of two runs'.
fn remove_reports(dir: &Path) {
    for name in [JUNIT_FILE, RESULTS_FILE, SUMMARY_FILE, HTML_FILE] {
        let _ = fs::remove_file(dir.join(name));
    }
}

/// Checks, before a run, that its reports can be written into `dir`: creates `dir` and
/// `dir/journal` if needed and writes and removes a temporary file in each. A run calls
/// this first, so an unwritable `--out` is found before any scenario runs rather than
/// after all of them.
pub fn check_writable(dir: &Path) -> Result<(), WriteError> {
    for folder in [dir.to_path_buf(), dir.join(JOURNAL_DIR)] {
        fs::create_dir_all(&folder).map_err(|source| WriteError::CreateDir {
            path: folder.clone(),
            source,
        })?;
        tempfile::Builder::new()
            .prefix(".harness-probe.")
            .tempfile_in(&folder)
            .map_err(|source| WriteError::Write {
                path: folder.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Renders one report of a run.
type Renderer = fn(&RunReport) -> String;

/// `<stem>.json`, or `<stem>-2.json`, `<stem>-3.json`, … when taken. Compared without
/// case, as macOS and Windows file systems do. Records the name in `taken`, lowercased.
fn unique_name(stem: &str, taken: &mut HashSet<String>) -> String {
    let mut name = format!("{stem}.json");
    let mut n = 1;
    while !taken.insert(name.to_lowercase()) {
        n += 1;
        name = format!("{stem}-{n}.json");
    }
    name
}

/// Removes `*.json` files in `journal_dir` whose (lowercased) names are not in `keep`.
/// Leaves everything else (folders, other files, temporary files of a concurrent writer).
fn remove_stale_journals(journal_dir: &Path, keep: &HashSet<String>) -> Result<(), WriteError> {
    let stale_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WriteError::RemoveStale { path, source }
    };
    for entry in fs::read_dir(journal_dir).map_err(stale_err(journal_dir))? {
        let entry = entry.map_err(stale_err(journal_dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_lowercase();
        let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_file && name.ends_with(".json") && !keep.contains(&name) {
            match fs::remove_file(&path) {
                Ok(()) => {}
                // Gone already: someone else cleaned up; that is what we wanted.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(stale_err(&path)(e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_count_up_ignoring_case() {
        let mut taken = HashSet::new();
        assert_eq!(unique_name("a", &mut taken), "a.json");
        assert_eq!(unique_name("A", &mut taken), "A-2.json");
        assert_eq!(unique_name("a", &mut taken), "a-3.json");
        assert_eq!(unique_name("b", &mut taken), "b.json");
    }
}
