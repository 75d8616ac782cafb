//! Ctrl-C and SIGTERM: remove the temporary output files in flight, then
//! exit. Without this, a killed decrypt would leave its partial plaintext
//! in a `.envelope-*.part` file, as destructors do not run on a signal.
//! (SIGKILL cannot be caught; the file is then left, readable only by its
//! owner.)

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers a temporary file to remove on a signal.
pub(crate) fn track(path: &Path) {
    if let Ok(mut paths) = IN_FLIGHT.lock() {
        paths.push(path.to_path_buf());
    }
}

/// Forgets a temporary file that was renamed or deleted.
pub(crate) fn untrack(path: &Path) {
    if let Ok(mut paths) = IN_FLIGHT.lock() {
        paths.retain(|p| p != path);
    }
}

/// Starts a thread that waits for SIGINT or SIGTERM, removes every tracked
/// file and exits with 130 or 143 (128 + the signal number, as shells do).
/// Best effort: if the handler cannot be installed, signals keep their
/// default behaviour.
pub(crate) fn install() {
    let spawned = std::thread::Builder::new()
        .name("envelope-signals".into())
        .spawn(|| {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            let code = runtime.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut interrupt), Ok(mut terminate)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return None;
                };
                tokio::select! {
                    _ = interrupt.recv() => Some(130),
                    _ = terminate.recv() => Some(143),
                }
            });
            if let Some(code) = code {
                // Hold the lock while exiting so no new file is registered
                // (and left behind) between the cleanup and the exit.
                let paths = IN_FLIGHT.lock();
                if let Ok(paths) = &paths {
                    for path in paths.iter() {
                        let _ = std::fs::remove_file(path);
                    }
                }
                std::process::exit(code);
            }
        });
    drop(spawned);
}
