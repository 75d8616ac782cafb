//! Output that never leaves partial results behind: files are written to a
//! temporary file beside the target and renamed into place on success.

use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` (or stdout for `-`) all at once.
pub(crate) fn write_atomically(path: &str, data: &[u8]) -> Result<(), String> {
    if path == "-" {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(data)
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("writing stdout: {e}"));
    }
    let target = Path::new(path);
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("creating a temporary file in {}: {e}", dir.display()))?;
    file.write_all(data)
        .and_then(|()| file.as_file().sync_all())
        .map_err(|e| format!("writing {path}: {e}"))?;
    file.persist(target)
        .map_err(|e| format!("renaming into {path}: {}", e.error))?;
    Ok(())
}
