//! Reading the files users write (scenarios, targets, gates, drills): UTF-8 text of a
//! bounded size from a regular file, or an error that says where and why. A FIFO, a
//! device such as `/dev/zero` or a file of gigabytes is refused before it is read, so no
//! input can block or exhaust the loader.

use std::io::Read;
use std::path::Path;

use crate::diagnostic::Diagnostic;
use crate::errors::LoadError;

/// The largest file the loader reads: far more than any hand-written file needs.
pub(crate) const MAX_SOURCE_BYTES: u64 = 4 * 1024 * 1024;

/// The text of `path`: a regular file of at most [`MAX_SOURCE_BYTES`] holding UTF-8.
/// Invalid UTF-8 is a positioned diagnostic at the first bad byte.
pub(crate) fn read(path: &Path) -> Result<String, LoadError> {
    let refuse = |why: String| LoadError::Read {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
    };
    let read_err = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(refuse(
            "not a regular file (hint: name a .toml file, not a folder, device or pipe)".into(),
        ));
    }
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(refuse(format!(
            "{} bytes, more than the {MAX_SOURCE_BYTES} a file of this kind may have",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SOURCE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(refuse(format!(
            "more than the {MAX_SOURCE_BYTES} bytes a file of this kind may have"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let shown = path.display().to_string();
        LoadError::Invalid(Box::new(Diagnostic::invalid_utf8(
            &shown,
            e.as_bytes(),
            &e.utf8_error(),
        )))
    })
}

/// Refuses to write over `path` when it exists and is not a regular file: renaming a
/// finished file over a device or a pipe replaces it (as root, `/dev/null` itself).
pub(crate) fn refuse_non_regular(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.is_file() => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "`{}` exists and is not a regular file; the harness writes only files (hint: give a path to a file)",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_folders_and_pipes_are_refused_unread() {
        for path in ["/dev/zero", "/dev/urandom", "/tmp"] {
            let err = read(Path::new(path)).unwrap_err();
            assert!(
                crate::errors::error_chain(&err).contains("not a regular file"),
                "{path}: {err}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(read(&fifo).is_err(), "a FIFO is refused, not waited on");
    }

    #[test]
    fn a_file_too_large_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_SOURCE_BYTES + 1).unwrap();
        let err = read(&big).unwrap_err();
        assert!(
            crate::errors::error_chain(&err).contains("more than the"),
            "{err}"
        );
    }

    #[test]
    fn invalid_utf8_is_a_positioned_diagnostic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.toml");
        std::fs::write(&file, b"name = \"x\"\n\xff\n").unwrap();
        match read(&file) {
            Err(LoadError::Invalid(d)) => assert_eq!(d.line_column(), (2, 1)),
            other => panic!("{other:?}"),
        }
    }
}
