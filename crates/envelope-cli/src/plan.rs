//! Turns `--input`/`--output` into a list of jobs before anything runs, so
//! that every usage problem (exit 2) is found before a key is loaded or a
//! byte is written, and a directory tree is listed once (its outputs are
//! never picked up as inputs).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::error::CliError;

/// The suffix encrypt appends, and decrypt strips, by default.
pub(crate) const ENCRYPTED_SUFFIX: &str = ".encrypted";
/// What decrypt appends to a name that does not end in [`ENCRYPTED_SUFFIX`].
pub(crate) const DECRYPTED_SUFFIX: &str = ".decrypted";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Encrypt,
    Decrypt,
}

/// One end of a job: stdin/stdout (`-`) or a path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    Std,
    Path(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Std => f.write_str("-"),
            Self::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

impl Endpoint {
    fn parse(arg: &str) -> Self {
        if arg == "-" {
            Self::Std
        } else {
            Self::Path(PathBuf::from(arg))
        }
    }
}

/// One input to encrypt or decrypt into one output.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) input: Endpoint,
    pub(crate) output: Endpoint,
    /// The input's length when it is a regular file (declared to the
    /// encryptor, and the progress bar's total).
    pub(crate) size: Option<u64>,
}

/// Everything to do, in order.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Output directories to create first (the mirror of the input tree,
    /// empty folders included).
    pub(crate) dirs: Vec<PathBuf>,
    pub(crate) jobs: Vec<Job>,
    /// Entries of an input tree that are neither files nor folders
    /// (symlinks, sockets, ...), which are not followed.
    pub(crate) skipped: Vec<PathBuf>,
}

impl Plan {
    /// Total input bytes, if every input's length is known.
    pub(crate) fn total_bytes(&self) -> Option<u64> {
        self.jobs.iter().map(|job| job.size).sum()
    }

    /// Creates the output directories.
    pub(crate) fn create_dirs(&self) -> Result<(), CliError> {
        for dir in &self.dirs {
            std::fs::create_dir_all(dir)
                .map_err(|e| CliError::Failed(format!("creating {}: {e}", dir.display())))?;
        }
        Ok(())
    }
}

/// The output file name for input file name `name`.
pub(crate) fn output_name(name: &OsStr, mode: Mode, suffix: Option<&str>) -> OsString {
    let mut out = name.to_os_string();
    match (mode, suffix) {
        (_, Some(suffix)) => out.push(suffix),
        (Mode::Encrypt, None) => out.push(ENCRYPTED_SUFFIX),
        (Mode::Decrypt, None) => match name.to_str().and_then(|n| n.strip_suffix(ENCRYPTED_SUFFIX))
        {
            Some(stem) if !stem.is_empty() => out = OsString::from(stem),
            _ => out.push(DECRYPTED_SUFFIX),
        },
    }
    out
}

/// Plans the jobs for `--input`, `--output`, `--recursive` and `--suffix`.
pub(crate) fn plan(
    input: &str,
    output: &str,
    recursive: bool,
    suffix: Option<&str>,
    mode: Mode,
) -> Result<Plan, CliError> {
    let input = Endpoint::parse(input);
    let output = Endpoint::parse(output);
    let Endpoint::Path(input_path) = input else {
        if let Endpoint::Path(out) = &output {
            if out.is_dir() {
                return Err(CliError::Usage(format!(
                    "output {} is a directory, but stdin has no name to derive a file name from",
                    out.display()
                )));
            }
        }
        return Ok(Plan {
            jobs: vec![Job {
                input: Endpoint::Std,
                output,
                size: None,
            }],
            ..Plan::default()
        });
    };
    let meta = std::fs::metadata(&input_path)
        .map_err(|e| CliError::Failed(format!("reading {}: {e}", input_path.display())))?;
    if meta.is_dir() {
        return plan_tree(&input_path, &output, recursive, suffix, mode);
    }
    let output = match output {
        Endpoint::Path(out) if out.is_dir() => {
            let name = input_path.file_name().ok_or_else(|| {
                CliError::Usage(format!("input {} has no file name", input_path.display()))
            })?;
            Endpoint::Path(out.join(output_name(name, mode, suffix)))
        }
        other => other,
    };
    if let Endpoint::Path(out) = &output {
        if same_file(&input_path, out) {
            return Err(CliError::Usage(format!(
                "output {} is the input file",
                out.display()
            )));
        }
    }
    Ok(Plan {
        jobs: vec![Job {
            input: Endpoint::Path(input_path),
            output,
            size: meta.is_file().then_some(meta.len()),
        }],
        ..Plan::default()
    })
}

fn plan_tree(
    input: &Path,
    output: &Endpoint,
    recursive: bool,
    suffix: Option<&str>,
    mode: Mode,
) -> Result<Plan, CliError> {
    if !recursive {
        return Err(CliError::Usage(format!(
            "input {} is a directory: add --recursive",
            input.display()
        )));
    }
    let Endpoint::Path(out_root) = output else {
        return Err(CliError::Usage(
            "a directory input needs an output directory, not stdout".into(),
        ));
    };
    if out_root.exists() && !out_root.is_dir() {
        return Err(CliError::Usage(format!(
            "output {} exists and is not a directory",
            out_root.display()
        )));
    }
    // Outputs inside the input tree would be encrypted again on the next run
    // (or overwrite inputs with an empty suffix).
    let in_abs = resolve(input)?;
    if resolve(out_root)?.starts_with(&in_abs) {
        return Err(CliError::Usage(format!(
            "output directory {} is inside the input directory {}",
            out_root.display(),
            input.display()
        )));
    }
    let mut plan = Plan {
        dirs: vec![out_root.clone()],
        ..Plan::default()
    };
    walk(input, out_root, suffix, mode, &mut plan)?;
    let mut seen = HashSet::new();
    for job in &plan.jobs {
        if !seen.insert(&job.output) {
            return Err(CliError::Usage(format!(
                "two inputs would both be written to {}",
                job.output
            )));
        }
    }
    Ok(plan)
}

/// Lists `dir` depth first, in name order (so runs are reproducible),
/// without following symlinks (so a link cannot loop or escape the tree).
fn walk(
    dir: &Path,
    out_dir: &Path,
    suffix: Option<&str>,
    mode: Mode,
    plan: &mut Plan,
) -> Result<(), CliError> {
    let listing = |e: std::io::Error| CliError::Failed(format!("listing {}: {e}", dir.display()));
    let mut entries = std::fs::read_dir(dir)
        .map_err(listing)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(listing)?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let kind = entry
            .file_type()
            .map_err(|e| CliError::Failed(format!("reading {}: {e}", path.display())))?;
        if kind.is_dir() {
            let sub = out_dir.join(&name);
            plan.dirs.push(sub.clone());
            walk(&path, &sub, suffix, mode, plan)?;
        } else if kind.is_file() {
            let size = entry
                .metadata()
                .map_err(|e| CliError::Failed(format!("reading {}: {e}", path.display())))?
                .len();
            plan.jobs.push(Job {
                input: Endpoint::Path(path),
                output: Endpoint::Path(out_dir.join(output_name(&name, mode, suffix))),
                size: Some(size),
            });
        } else {
            plan.skipped.push(path);
        }
    }
    Ok(())
}

/// An absolute, symlink-free form of `path`, which need not exist yet: the
/// longest existing prefix is canonicalized and the rest appended.
fn resolve(path: &Path) -> Result<PathBuf, CliError> {
    let absolute = std::path::absolute(path)
        .map_err(|e| CliError::Failed(format!("resolving {}: {e}", path.display())))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut out = canonical;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Ok(out);
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(Component::Normal(last))) => {
                rest.push(last.to_os_string());
                existing = parent;
            }
            (Some(parent), _) => existing = parent,
            (None, _) => return Ok(absolute),
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str, mode: Mode, suffix: Option<&str>) -> String {
        output_name(OsStr::new(s), mode, suffix)
            .into_string()
            .unwrap_or_default()
    }

    #[test]
    fn names_follow_the_suffix_rules() {
        assert_eq!(name("a.txt", Mode::Encrypt, None), "a.txt.encrypted");
        assert_eq!(name("a.txt", Mode::Encrypt, Some(".enc")), "a.txt.enc");
        assert_eq!(name("a.txt.encrypted", Mode::Decrypt, None), "a.txt");
        assert_eq!(name("a.txt", Mode::Decrypt, None), "a.txt.decrypted");
        assert_eq!(
            name(".encrypted", Mode::Decrypt, None),
            ".encrypted.decrypted"
        );
        assert_eq!(
            name("a.encrypted", Mode::Decrypt, Some(".d")),
            "a.encrypted.d"
        );
    }

    #[test]
    fn trees_mirror_folders_and_refuse_bad_combinations() -> Result<(), CliError> {
        let dir = tempfile::tempdir().map_err(|e| CliError::Failed(e.to_string()))?;
        let root = dir.path().join("in");
        std::fs::create_dir_all(root.join("a/empty"))
            .map_err(|e| CliError::Failed(e.to_string()))?;
        std::fs::write(root.join("a/x"), b"x").map_err(|e| CliError::Failed(e.to_string()))?;
        let input = root.to_string_lossy().into_owned();
        let out = dir.path().join("out");
        let tree = plan(&input, &out.to_string_lossy(), true, None, Mode::Encrypt)?;
        assert_eq!(
            tree.dirs,
            vec![out.clone(), out.join("a"), out.join("a/empty")]
        );
        assert_eq!(tree.jobs.len(), 1);
        assert_eq!(
            tree.jobs[0].output,
            Endpoint::Path(out.join("a/x.encrypted"))
        );
        assert_eq!(tree.total_bytes(), Some(1));

        let usage = |r: Result<Plan, CliError>| matches!(r, Err(CliError::Usage(_)));
        assert!(usage(plan(
            &input,
            &out.to_string_lossy(),
            false,
            None,
            Mode::Encrypt
        )));
        assert!(usage(plan(&input, "-", true, None, Mode::Encrypt)));
        let inside = root.join("a/new-out");
        assert!(usage(plan(
            &input,
            &inside.to_string_lossy(),
            true,
            None,
            Mode::Encrypt
        )));
        let file = root.join("a/x").to_string_lossy().into_owned();
        assert!(usage(plan(&file, &file, false, None, Mode::Encrypt)));
        assert!(usage(plan("-", &input, false, None, Mode::Encrypt)));
        Ok(())
    }
}
