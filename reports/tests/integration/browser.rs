//! `report.html` in a real browser: Debian's headless Chromium opens the fixture report
//! from a file, runs its script, and dumps the DOM. The test fails on any console message
//! (an uncaught exception, a Content-Security-Policy violation, a resource the page tried
//! to load) and unless the script proved it ran to the end (`<body data-ready="1">`).
//!
//! Chromium's log does not say a console message's level, so every one counts: the page
//! logs nothing itself.
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium`; `cargo xtask test` installs
//! it). To look at the page, take a screenshot:
//!
//! ```text
//! REPORT_SCREENSHOT=/tmp/report.png cargo test -p reports --test integration browser::screenshot -- --ignored
//! ```
//!
//! (`REPORT_SCREENSHOT_SIZE=1280,6000` for a longer page, `REPORT_SCREENSHOT_OPEN=1` to
//! open every scenario.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::fixture::basic_report;
use crate::tools;

/// How long Chromium may take before it is killed.
const LIMIT: Duration = Duration::from_secs(30);

fn chromium() -> std::path::PathBuf {
    tools::require(
        "chromium",
        &["/usr/bin/chromium"],
        "headless Chromium",
        "apt-get install chromium",
    )
}

/// Chromium with a fresh profile, nothing in the background, and its log on stderr.
fn headless(profile: &Path) -> Command {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=2000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

/// What the page did: the DOM after its script ran, and the console messages.
struct Visit {
    dom: String,
    console: Vec<String>,
}

impl Visit {
    /// Everything wrong: console messages, and a script that did not finish.
    fn problems(&self) -> Vec<String> {
        let mut problems = self.console.clone();
        if !self.dom.contains("data-ready=\"1\"") {
            problems.push("the page's script did not finish: no data-ready=\"1\" on <body>".into());
        }
        problems
    }
}

/// Opens `html` (a complete page) from a file in headless Chromium.
fn visit(html: &str) -> Visit {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(reports::HTML_FILE);
    std::fs::write(&page, html).unwrap();
    let mut cmd = headless(&dir.path().join("profile"));
    cmd.arg("--dump-dom").arg(&page);
    let ran = tools::run(cmd, LIMIT);
    assert!(
        ran.status.is_some(),
        "chromium did not finish within {LIMIT:?}\nstderr:\n{}",
        ran.stderr
    );
    assert!(
        ran.success() && ran.stdout.contains("</html>"),
        "chromium failed ({:?})\nstderr:\n{}",
        ran.status,
        ran.stderr
    );
    Visit {
        dom: ran.stdout,
        console: ran
            .stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
            .map(str::to_owned)
            .collect(),
    }
}

#[test]
fn the_report_runs_its_script_without_a_console_message() {
    let visit = visit(&reports::html::render(&basic_report()));
    assert_eq!(
        visit.problems(),
        Vec::<String>::new(),
        "\nDOM:\n{}",
        visit.dom
    );
    // The script showed the filter bar and counted the scenarios.
    assert!(
        visit
            .dom
            .contains("<output id=\"shown\">showing 6 of 6</output>"),
        "{}",
        visit.dom
    );
    assert!(
        !visit
            .dom
            .contains("<form id=\"filters\" class=\"filters\" role=\"search\" hidden")
    );
}

/// `'sha256-…'` of a script, as a Content-Security-Policy names it.
fn csp_hash(script: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The report page with `script` run after the page's own, allowed by its policy.
fn with_test_script(html: &str, script: &str) -> String {
    html.replacen(
        "script-src ",
        &format!("script-src {} ", csp_hash(script)),
        1,
    )
    .replacen("</body>", &format!("<script>{script}</script>\n</body>"), 1)
}

/// The test above can fail: the same page with a script that throws, under a
/// Content-Security-Policy that allows that script, is caught twice over.
#[test]
fn a_script_that_throws_is_caught() {
    let html = reports::html::render(&basic_report());
    let start = html.rfind("<script>").unwrap() + "<script>".len();
    let end = html.rfind("</script>").unwrap();
    let script = &html[start..end];
    let broken = script.replace(
        "document.body.setAttribute('data-ready', '1');",
        "undefinedFunction(); document.body.setAttribute('data-ready', '1');",
    );
    assert_ne!(
        broken, script,
        "the script no longer sets data-ready as expected"
    );
    let page = format!("{}{broken}{}", &html[..start], &html[end..])
        .replace(&csp_hash(script), &csp_hash(&broken));

    let problems = visit(&page).problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("Uncaught ReferenceError")),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("data-ready")),
        "{problems:#?}"
    );
}

/// The filter bar filters: a test script types and clicks as a reader would, and writes
/// down which scenarios stayed visible. In page order the scenarios are s-1 and s-5
/// (failed), s-2 (error), s-3 (flaky), s-0 (passed), s-4 (skipped).
#[test]
fn the_filters_filter() {
    const TYPE_AND_CLICK: &str = r#"(function () {
  var form = document.getElementById('filters');
  var query = document.getElementById('q');
  var only = document.getElementById('failures-only');
  function visible() {
    return Array.prototype.filter.call(document.querySelectorAll('details.scenario'),
      function (d) { return !d.hidden; }).map(function (d) { return d.id; }).join(' ');
  }
  var seen = [];
  query.value = 'CHAOS';
  form.dispatchEvent(new Event('input', { bubbles: true }));
  seen.push('chaos: ' + visible());
  query.value = '';
  only.click();
  seen.push('failures only: ' + visible() + ' (' + document.getElementById('shown').textContent + ')');
  only.click();
  form.querySelector('input[value="passed"]').click();
  seen.push('no passed: ' + visible());
  form.querySelector('input[value="failed"]').click();
  form.querySelector('input[value="error"]').click();
  form.querySelector('input[value="flaky"]').click();
  form.querySelector('input[value="skipped"]').click();
  seen.push('none: ' + visible() + (document.getElementById('none').hidden ? '' : 'nothing matches'));
  document.body.setAttribute('data-seen', seen.join('; '));
}());"#;
    let html = with_test_script(&reports::html::render(&basic_report()), TYPE_AND_CLICK);
    let visit = visit(&html);
    assert_eq!(visit.problems(), Vec::<String>::new());
    let seen = visit
        .dom
        .split("data-seen=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the test script did not run:\n{}", visit.dom));
    assert_eq!(
        seen,
        "chaos: s-2 s-3 s-4; failures only: s-1 s-5 s-2 (showing 3 of 6); \
         no passed: s-1 s-5 s-2 s-3 s-4; none: nothing matches"
    );
}

/// Writes a screenshot of the fixture report to `$REPORT_SCREENSHOT`, to look at, of the
/// window size `$REPORT_SCREENSHOT_SIZE` (default `1280,2000`). With
/// `REPORT_SCREENSHOT_OPEN=1`, every scenario is open, not only the failures.
#[test]
#[ignore = "writes a screenshot to look at; set REPORT_SCREENSHOT"]
fn screenshot() {
    let out = std::env::var("REPORT_SCREENSHOT").expect("set REPORT_SCREENSHOT=/path/to.png");
    let size = std::env::var("REPORT_SCREENSHOT_SIZE").unwrap_or_else(|_| "1280,2000".into());
    let dir = tempfile::tempdir().unwrap();
    let written = reports::write_all(&basic_report(), dir.path()).unwrap();
    if std::env::var_os("REPORT_SCREENSHOT_OPEN").is_some() {
        let html = std::fs::read_to_string(&written.html).unwrap();
        let opened = html.replace(
            "<details class=\"scenario ",
            "<details open class=\"scenario ",
        );
        std::fs::write(&written.html, opened).unwrap();
    }
    let mut cmd = headless(&dir.path().join("profile"));
    cmd.arg(format!("--screenshot={out}"))
        .arg(format!("--window-size={size}"))
        .arg("--hide-scrollbars")
        .arg(&written.html);
    let ran = tools::run(cmd, LIMIT);
    assert!(ran.success(), "{:?}\n{}", ran.status, ran.stderr);
}
