//! Output that never leaves partial results behind: a file is written to a
//! temporary file beside its target (same directory, so the rename cannot
//! cross file systems) and renamed into place only by [`Output::commit`].
//! Dropping an uncommitted output deletes the temporary file, so every
//! error path (including a panic unwinding) cleans up.
//!
//! The temporary file is created with mode 0600, so partial plaintext is
//! never readable by other users while it exists. A process killed by a
//! signal cannot run destructors; `crate::interrupt` removes the file on
//! Ctrl-C and SIGTERM.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::plan::Endpoint;

/// Where a job's output goes.
pub(crate) enum Output {
    Stdout(io::StdoutLock<'static>),
    File(TempOutput),
}

/// A temporary file that becomes `target` on commit and disappears otherwise.
pub(crate) struct TempOutput {
    /// `None` once committed.
    temp: Option<tempfile::NamedTempFile>,
    target: PathBuf,
}

impl Output {
    /// Opens stdout, or a temporary file beside `target`.
    pub(crate) fn create(target: &Endpoint) -> Result<Self, String> {
        let Endpoint::Path(target) = target else {
            return Ok(Self::Stdout(io::stdout().lock()));
        };
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".envelope-")
            .suffix(".part")
            .tempfile_in(dir)
            .map_err(|e| format!("creating a temporary file in {}: {e}", dir.display()))?;
        crate::interrupt::track(temp.path());
        Ok(Self::File(TempOutput {
            temp: Some(temp),
            target: target.clone(),
        }))
    }

    /// Flushes, syncs and renames the file into place (or flushes stdout).
    pub(crate) fn commit(self) -> Result<(), String> {
        match self {
            Self::Stdout(mut stdout) => stdout.flush().map_err(|e| format!("writing stdout: {e}")),
            Self::File(mut file) => file.commit(),
        }
    }

    /// The destination, for error messages.
    fn describe(&self) -> String {
        match self {
            Self::Stdout(_) => "stdout".into(),
            Self::File(file) => file.target.display().to_string(),
        }
    }
}

impl TempOutput {
    fn commit(&mut self) -> Result<(), String> {
        let Some(mut temp) = self.temp.take() else {
            return Err(format!("{} was already committed", self.target.display()));
        };
        let path = temp.path().to_path_buf();
        let result = temp
            .flush()
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| format!("writing {}: {e}", self.target.display()))
            .and_then(|()| {
                temp.persist(&self.target)
                    .map(drop)
                    .map_err(|e| format!("renaming into {}: {}", self.target.display(), e.error))
            });
        // Renamed, or deleted by the failed persist's drop: nothing is left
        // at the temporary path for the interrupt handler to remove.
        crate::interrupt::untrack(&path);
        result
    }

    fn file(&mut self) -> io::Result<&mut tempfile::NamedTempFile> {
        self.temp
            .as_mut()
            .ok_or_else(|| io::Error::other("output already committed"))
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        // The NamedTempFile's own drop deletes the file right after this.
        if let Some(temp) = &self.temp {
            crate::interrupt::untrack(temp.path());
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let result = match self {
            Self::Stdout(out) => out.write(buf),
            Self::File(file) => file.file().and_then(|f| f.write(buf)),
        };
        result.map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", self.describe())))
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(out) => out.flush(),
            Self::File(file) => file.file().and_then(|f| f.flush()),
        }
    }
}
