//! Atomic file replacement: readers of a report see the old file or the new one, never a
//! half-written one, even when the run is killed mid-write.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use crate::errors::WriteError;

/// Writes `contents` to `path` by writing a temporary file in the same directory (so the
/// rename cannot cross file systems), flushing it to disk, then renaming it over `path`.
///
/// On any error the temporary file is removed and `path` is left as it was. The parent
/// directory must exist.
pub(crate) fn write(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    stage(path, contents)?.commit()
}

/// A file written and flushed beside its path, not yet renamed into place. Dropping it
/// removes the temporary file.
pub(crate) struct Staged {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

/// The first half of [`write`]: `contents` in a temporary file beside `path`, flushed to
/// disk. Several files staged first and committed after go into place together, as far
/// as renames allow.
pub(crate) fn stage(path: &Path, contents: &[u8]) -> Result<Staged, WriteError> {
    let write_err = |source| WriteError::Write {
        path: path.to_path_buf(),
        source,
    };
    // Renaming over a device or a pipe would replace it (as root, `/dev/null` itself).
    if let Ok(meta) = std::fs::symlink_metadata(path)
        && !meta.is_file()
    {
        return Err(write_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it exists and is not a regular file, and a report never replaces one",
        )));
    }
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
    Ok(Staged {
        tmp,
        path: path.to_path_buf(),
    })
}

impl Staged {
    /// Renames the staged file over its path.
    pub(crate) fn commit(self) -> Result<(), WriteError> {
        let Staged { tmp, path } = self;
        tmp.persist(&path).map_err(|e| WriteError::Persist {
            path,
            source: e.error,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    // Regression: written as root, an output path of `/dev/null` renamed a file over the
    // device, and every later `>/dev/null` on the machine wrote into a file.
    #[test]
    fn a_device_or_pipe_is_never_renamed_over() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let err = stage(&fifo, b"{}").err().expect("refused");
        assert!(format!("{err:?}").contains("not a regular file"), "{err:?}");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo(),
            "the pipe is still a pipe"
        );
        assert!(stage(Path::new("/dev/null"), b"{}").is_err());
    }

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
    fn a_directory_in_the_way_is_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"").unwrap();
        let err = write(&path, b"x").unwrap_err();
        assert!(matches!(err, WriteError::Write { .. }), "{err:?}");
        assert_eq!(names(dir.path()), ["taken"]);
    }
}
