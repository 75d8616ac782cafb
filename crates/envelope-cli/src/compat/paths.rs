//! aws-encryption-cli's rules for `--input` and `--output`: pathname
//! patterns, the checks it makes before anything runs, and how it names
//! outputs (`--suffix`, by default `.encrypted` or `.decrypted`, always
//! appended; a directory's tree mirrored under the output directory). The
//! whole list of jobs is made before the first one runs, so outputs
//! written into the input tree are never picked up as inputs.

use std::path::{Component, Path, PathBuf};

use super::args::{Action, CompatArgs, MetadataTarget};
use crate::plan::{Endpoint, Job};

/// The jobs, and warnings about inputs passed over.
#[derive(Debug, Default)]
pub(crate) struct CompatPlan {
    pub(crate) jobs: Vec<Job>,
    pub(crate) warnings: Vec<String>,
}

/// `os.path.abspath`: absolute, with `.` and `..` resolved lexically.
pub(crate) fn lexical_absolute(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `os.path.realpath`: symlinks resolved as far as the path exists.
pub(crate) fn realpath(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let out = lexical_absolute(path);
    match (out.parent(), out.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|p| p.join(name))
            .unwrap_or(out),
        _ => out,
    }
}

fn default_suffix(action: Action) -> &'static str {
    match action {
        Action::Encrypt => ".encrypted",
        Action::Decrypt | Action::DecryptUnsigned => ".decrypted",
    }
}

/// The output for `source` in `dir`: its file name plus the suffix.
fn output_filename(source: &Path, dir: &Path, args: &CompatArgs) -> PathBuf {
    let suffix = args
        .suffix
        .as_deref()
        .unwrap_or(default_suffix(args.action));
    let mut name = source.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    dir.join(name)
}

fn is_dir(path: &str) -> bool {
    Path::new(path).is_dir()
}

/// Checks the command line's paths as the official tool does and lists the
/// jobs. Every error here is one the official tool reports (exit 1).
pub(crate) fn plan(args: &CompatArgs) -> Result<CompatPlan, String> {
    let (input, output) = (args.input.as_str(), args.output.as_str());
    if output != "-" && !is_dir(output) {
        let parent = Path::new(output).parent().unwrap_or(Path::new(""));
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if !realpath(parent).is_dir() {
            return Err(
                "If destination is a file, the immediate parent directory must already exist."
                    .into(),
            );
        }
    }
    if let MetadataTarget::Output { path, .. } = &args.metadata {
        check_metadata_path(path, input, output)?;
    }
    if !(input == "-" && output == "-") && realpath(Path::new(input)) == realpath(Path::new(output))
    {
        return Err("Destination and source cannot be the same".into());
    }
    if input == "-" {
        if is_dir(output) {
            return Err("Destination may not be a directory when source is stdin".into());
        }
        return Ok(CompatPlan {
            jobs: vec![Job {
                input: Endpoint::Std,
                output: endpoint(output),
                size: None,
            }],
            warnings: Vec::new(),
        });
    }
    let sources = expand(input)?;
    if sources.len() > 1 && !is_dir(output) {
        return Err(
            "If operating on multiple sources, destination must be an existing directory".into(),
        );
    }
    if sources.iter().any(|s| s.is_dir()) && !is_dir(output) {
        return Err(
            "If operating on a source directory, destination must be an existing directory".into(),
        );
    }
    let mut plan = CompatPlan::default();
    for source in sources {
        if source.is_dir() {
            if !args.recursive {
                plan.warnings.push(format!(
                    "Skipping {} because it is a directory and -r/-R/--recursive is not set",
                    source.display()
                ));
                continue;
            }
            walk(&source, &source, Path::new(output), args, &mut plan)?;
        } else {
            let destination = if is_dir(output) {
                Endpoint::Path(output_filename(&source, Path::new(output), args))
            } else {
                endpoint(output)
            };
            plan.jobs.push(job(source, destination));
        }
    }
    Ok(plan)
}

fn endpoint(arg: &str) -> Endpoint {
    if arg == "-" {
        Endpoint::Std
    } else {
        Endpoint::Path(PathBuf::from(arg))
    }
}

fn job(source: PathBuf, output: Endpoint) -> Job {
    let size = std::fs::metadata(&source).ok().map(|m| m.len());
    Job {
        input: Endpoint::Path(source),
        output,
        size,
    }
}

/// The input as a pathname pattern (`*`, `?`, `[...]`; a leading dot is
/// matched only by a dot, as Python's glob does).
fn expand(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let invalid = || "Invalid source.  Must be a valid pathname pattern or stdin (-)".to_owned();
    let sources: Vec<PathBuf> = glob::glob_with(pattern, options)
        .map_err(|_| invalid())?
        .filter_map(Result::ok)
        .collect();
    if sources.is_empty() {
        return Err(invalid());
    }
    Ok(sources)
}

/// Every file under `dir` (directories are not followed through symlinks,
/// as `os.walk` does not), in name order, named under `destination`.
fn walk(
    root: &Path,
    dir: &Path,
    destination: &Path,
    args: &CompatArgs,
    plan: &mut CompatPlan,
) -> Result<(), String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|entry| entry.file_name());
    let relative = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let out_dir = destination.join(relative);
    for entry in entries {
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        if kind.is_dir() {
            walk(root, &path, destination, args, plan)?;
        } else if kind.is_file() || (kind.is_symlink() && !path.is_dir()) {
            let output = output_filename(&path, &out_dir, args);
            plan.jobs.push(job(path, Endpoint::Path(output)));
        }
    }
    Ok(())
}

fn check_metadata_path(metadata: &str, input: &str, output: &str) -> Result<(), String> {
    if metadata == "-" {
        if output == "-" {
            return Err("Metadata output cannot be stdout when output is stdout".into());
        }
        return Ok(());
    }
    let parent = Path::new(metadata)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err("Parent directory for requested metdata file does not exist.".into());
    }
    let real_metadata = realpath(Path::new(metadata));
    if real_metadata.is_dir() {
        return Err("Metadata output cannot be a directory".into());
    }
    let real_input = realpath(Path::new(input));
    let real_output = realpath(Path::new(output));
    if real_metadata == real_input || real_metadata == real_output {
        return Err("Metadata output file cannot be the input or output".into());
    }
    // As text, as the official tool compares them: `dec.json` beside an
    // output directory `dec` is refused too. Refusing is safe, and a script
    // that works with the official tool works here.
    let under = |dir: &Path| {
        real_metadata
            .as_os_str()
            .as_encoded_bytes()
            .starts_with(dir.as_os_str().as_encoded_bytes())
    };
    if real_output.is_dir() && under(&real_output) {
        return Err("Metadata output file cannot be in the output directory".into());
    }
    if real_input.is_dir() && under(&real_input) {
        return Err("Metadata output file cannot be in the input directory".into());
    }
    Ok(())
}
