//! Atomic file replacement: readers of a report see the old file or the new one, never a
//! half-written one, even when the run is killed mid-write.

use std::io::Write as _;
use std::path::Path;

use crate::errors::WriteError;

/// Writes `contents` to `path` by writing a temporary file in the same directory (so the
/// rename cannot cross file systems), flushing it to disk, then renaming it over `path`.
///
/// On any error the temporary file is removed and `path` is left as it was. The parent
/// directory must exist.
pub(crate) fn write(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    let write_err = |source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".");

    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // NamedTempFile defaults to 0600; a report is an ordinary file (the umask still applies).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));

    let mut tmp = builder.tempfile_in(dir).map_err(write_err)?;
    tmp.write_all(contents).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| WriteError::Persist {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_then_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write(&path, b"first, and longer").unwrap();
        write(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        assert_eq!(names(dir.path()), ["a.txt"]);
    }

    #[test]
    fn missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("a.txt");
        let err = write(&path, b"x").unwrap_err();
        assert!(matches!(err, WriteError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("a.txt"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn renaming_onto_a_directory_fails_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"").unwrap();
        let err = write(&path, b"x").unwrap_err();
        assert!(matches!(err, WriteError::Persist { .. }), "{err:?}");
        assert_eq!(names(dir.path()), ["taken"]);
    }
}
