//! Files a scenario reads besides itself (`input_file`, `[input_files]`, reply bodies):
//! only regular files under the folder of the file that names them, at most
//! [`MAX_FILE_BYTES`] long. Anything else (`/dev/zero`, a FIFO, `/etc/shadow`, a symlink
//! out of the tree, `../../x`) is refused before it is opened.

use std::path::Path;

/// The largest file a scenario may read.
pub const MAX_FILE_BYTES: u64 = crate::source::MAX_SOURCE_BYTES;

/// Reads `name`, relative to `dir`, if it is a regular file inside `dir`'s tree.
pub(crate) fn read_under(dir: &Path, name: &str) -> Result<Vec<u8>, String> {
    let root = dir
        .canonicalize()
        .map_err(|e| format!("cannot resolve the scenario's folder: {e}"))?;
    let path = root.join(name);
    let real = path.canonicalize().map_err(|e| e.to_string())?;
    if !real.starts_with(&root) {
        return Err("it is outside the scenario's folder".into());
    }
    let meta = std::fs::metadata(&real).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file (devices, FIFOs and folders are not read)".into());
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "it is {} bytes, more than the limit of {MAX_FILE_BYTES}",
            meta.len()
        ));
    }
    let bytes = std::fs::read(&real).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "`{name}` grew past the limit of {MAX_FILE_BYTES} bytes"
        ));
    }
    Ok(bytes)
}

pub(crate) fn read_text(dir: &Path, name: &str) -> Result<String, String> {
    String::from_utf8(read_under(dir, name)?).map_err(|_| "it is not UTF-8 text".to_string())
}

pub(crate) fn read_json(dir: &Path, name: &str) -> Result<serde_json::Value, String> {
    let bytes = read_under(dir, name)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not valid JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_inside_the_folder_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/ok.json"), "{\"a\": 1}").unwrap();
        assert_eq!(read_json(dir.path(), "sub/ok.json").unwrap()["a"], 1);

        for outside in ["/etc/shadow", "/dev/zero", "../x", "/etc/passwd"] {
            let e = read_under(&dir.path().join("sub"), outside).unwrap_err();
            assert!(
                e.contains("outside") || e.contains("No such file") || e.contains("denied"),
                "{outside}: {e}"
            );
        }
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        assert!(
            read_under(dir.path(), "zero")
                .unwrap_err()
                .contains("outside")
        );

        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Refused without opening (opening a FIFO would block until a writer came).
        assert!(
            read_under(dir.path(), "fifo")
                .unwrap_err()
                .contains("not a regular file")
        );
        assert!(
            read_under(dir.path(), "sub")
                .unwrap_err()
                .contains("not a regular file")
        );

        let big = dir.path().join("big.txt");
        std::fs::write(&big, vec![b'x'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(
            read_under(dir.path(), "big.txt")
                .unwrap_err()
                .contains("limit")
        );
    }
}
