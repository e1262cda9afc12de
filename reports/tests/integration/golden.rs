//! Golden files: rendered output compared byte for byte with `tests/fixtures/<name>`.

use std::path::PathBuf;

/// Asserts that `actual` equals the golden file `name`. With `BLESS=1` in the environment,
/// writes `actual` to the file instead (then review the diff before committing).
pub fn assert_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e} (hint: BLESS=1 writes it)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the rendered output (BLESS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}
