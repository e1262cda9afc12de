//! The errors this crate returns. Rendering cannot fail; only writing files can.

use std::io;
use std::path::PathBuf;

/// Writing the reports of a run to disk failed.
///
/// Every variant names the path it was working on; the cause is the [`source`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The output directory (or its `journal/` folder) could not be created.
    #[error("could not create the report directory `{}`", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A temporary file next to the report could not be created or written.
    #[error("could not write the report `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The finished temporary file could not be renamed over the report.
    #[error("could not move the finished report into place at `{}`", path.display())]
    Persist {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The journal folder could not be listed, or a journal left by an earlier run could
    /// not be removed. `path` is the folder or the file.
    #[error("could not remove stale journals at `{}`", path.display())]
    RemoveStale {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
