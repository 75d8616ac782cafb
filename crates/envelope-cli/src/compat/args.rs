//! The `aws-encryption-cli` command line, parsed as the official tool
//! parses it (argparse there, clap here): the same flags, `nargs="+"` groups
//! for `-w` and `-c`, flags that may not repeat, `--suffix` with an optional
//! value, unambiguous prefixes of long flags, and `@FILE` arguments read
//! from a file. Syntax errors exit 2, as argparse does.

use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgGroup, ArgMatches, Command};
use envelope_core::{AlgorithmSuite, CommitmentPolicy};

/// What to do with each input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    Encrypt,
    Decrypt,
    /// Decrypt, refusing signed messages before anything is released.
    DecryptUnsigned,
}

impl Action {
    /// The `mode` written in metadata records.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::DecryptUnsigned => "decrypt-unsigned",
        }
    }
}

/// Where metadata records go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MetadataTarget {
    /// `-S/--suppress-metadata`.
    Suppressed,
    /// `--metadata-output PATH|-`; appended to unless `--overwrite-metadata`.
    Output { path: String, overwrite: bool },
}

/// One `-w/--wrapping-keys` group, checked as the official tool checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProviderConfig {
    pub(crate) keys: Vec<String>,
    pub(crate) discovery: bool,
    pub(crate) discovery_accounts: Vec<String>,
    pub(crate) discovery_partition: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) profile: Option<String>,
}

/// `--caching` settings.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CachingConfig {
    pub(crate) capacity: u64,
    pub(crate) max_age: f64,
    pub(crate) max_messages_encrypted: Option<u64>,
    pub(crate) max_bytes_encrypted: Option<u64>,
}

/// The whole command line, checked.
#[derive(Clone, Debug)]
pub(crate) struct CompatArgs {
    pub(crate) action: Action,
    pub(crate) metadata: MetadataTarget,
    pub(crate) providers: Vec<ProviderConfig>,
    pub(crate) commitment_policy: CommitmentPolicy,
    pub(crate) caching: Option<CachingConfig>,
    pub(crate) input: String,
    pub(crate) output: String,
    pub(crate) encode: bool,
    pub(crate) decode: bool,
    /// Encrypt: the context. Decrypt: pairs the header must carry.
    pub(crate) encryption_context: Vec<(String, String)>,
    /// Decrypt: keys the header must carry (`-c KEY` without a value).
    pub(crate) required_keys: Vec<String>,
    pub(crate) algorithm: Option<AlgorithmSuite>,
    pub(crate) frame_length: Option<u32>,
    pub(crate) max_length: Option<u64>,
    pub(crate) max_encrypted_data_keys: Option<usize>,
    pub(crate) suffix: Option<String>,
    pub(crate) interactive: bool,
    pub(crate) no_overwrite: bool,
    pub(crate) recursive: bool,
    pub(crate) quiet: bool,
}

/// The suite `--algorithm` names: Python's `Algorithm` member names, and
/// the specification's (which end the three suites without a KDF in
/// `_NO_KDF`).
pub(crate) fn suite_by_name(name: &str) -> Option<AlgorithmSuite> {
    AlgorithmSuite::ALL
        .into_iter()
        .find(|suite| suite.name() == name || suite_name(*suite) == name)
}

/// The name the official tool writes for `suite` in metadata: Python's.
pub(crate) fn suite_name(suite: AlgorithmSuite) -> &'static str {
    let name = suite.name();
    name.strip_suffix("_NO_KDF").unwrap_or(name)
}

fn command() -> Command {
    let unique = |name: &'static str| Arg::new(name).long(name).action(ArgAction::Set);
    let flag = |name: &'static str| Arg::new(name).long(name).action(ArgAction::SetTrue);
    Command::new("aws-encryption-cli")
        .about("Encrypt or decrypt data in the AWS Encryption SDK format (envelope's aws-encryption-cli mode)")
        .version(concat!("envelope ", env!("CARGO_PKG_VERSION"), " (aws-encryption-cli 4.x command line)"))
        .infer_long_args(true)
        .arg(flag("encrypt").short('e').help("Encrypt data"))
        .arg(flag("decrypt").short('d').help("Decrypt data"))
        .arg(flag("decrypt-unsigned").help("Decrypt data, refusing signed messages"))
        .group(ArgGroup::new("action").args(["encrypt", "decrypt", "decrypt-unsigned"]).required(true))
        .arg(flag("suppress-metadata").short('S').help("Suppress metadata output"))
        .arg(unique("metadata-output").value_name("PATH").help("File to which to append metadata records, or - for stdout"))
        .group(ArgGroup::new("metadata").args(["suppress-metadata", "metadata-output"]).required(true))
        .arg(flag("overwrite-metadata").help("Overwrite the metadata file rather than appending to it"))
        .arg(
            Arg::new("wrapping-keys")
                .short('w')
                .long("wrapping-keys")
                .num_args(1..)
                .action(ArgAction::Append)
                .required(true)
                .value_name("key=VALUE")
                .help("A wrapping key provider: key=ARN [key=ARN ...] [provider=aws-kms] [region=R] [profile=P] [discovery=true [discovery-account=ID ... discovery-partition=P]]"),
        )
        .arg(
            unique("commitment-policy")
                .value_parser(["forbid-encrypt-allow-decrypt", "require-encrypt-allow-decrypt", "require-encrypt-require-decrypt"])
                .default_value("require-encrypt-require-decrypt"),
        )
        .arg(unique("caching").num_args(1..).help("capacity=N max_age=SECONDS [max_messages_encrypted=N] [max_bytes_encrypted=N]"))
        .arg(flag("buffer").short('b').help("Release output only once the whole message has verified (always so for envelope)"))
        .arg(unique("input").short('i').required(true).help("Input file, directory, pathname pattern, or - for stdin"))
        .arg(unique("output").short('o').required(true).help("Output file or directory, or - for stdout"))
        .arg(flag("encode").help("Base64-encode output after processing"))
        .arg(flag("decode").help("Base64-decode input before processing"))
        .arg(unique("encryption-context").short('c').num_args(1..).value_name("key=value").help("Encrypt: the encryption context. Decrypt: pairs (key=value) or keys that the message must carry"))
        .arg(unique("algorithm").help("Algorithm suite name (encryption only)"))
        .arg(unique("frame-length").value_parser(clap::value_parser!(u32)).help("Frame length in bytes (encryption only)"))
        .arg(unique("max-length").value_parser(clap::value_parser!(u64)).help("Maximum frame length (framed) or content length (non-framed) to decrypt"))
        .arg(unique("max-encrypted-data-keys").value_parser(clap::value_parser!(usize)).help("Maximum number of encrypted data keys"))
        .arg(unique("suffix").num_args(0..=1).default_missing_value("").help("Suffix for output names derived from input names (empty if given without a value)"))
        .arg(flag("interactive").help("Ask before overwriting existing files"))
        .arg(flag("no-overwrite").help("Never overwrite existing files"))
        .arg(flag("recursive").short('r').short_alias('R').help("Allow directories as input"))
        .arg(Arg::new("verbosity").short('v').action(ArgAction::Count).help("More diagnostics (accepted; envelope prints errors and warnings only)"))
        .arg(flag("quiet").short('q').help("Suppress warnings"))
}

/// Expands `@FILE` arguments: each line of the file is split as a shell
/// would (quotes, backslashes), with `#` starting a comment, and `~` and
/// `$VAR` expanded in each word, as the official tool does.
fn expand_files(args: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let mut out = Vec::with_capacity(args.len());
    for (index, arg) in args.into_iter().enumerate() {
        let Some(path) = arg
            .to_str()
            .and_then(|a| a.strip_prefix('@'))
            .filter(|_| index > 0)
        else {
            out.push(arg);
            continue;
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading arguments from {path}: {e}"))?;
        for line in text.lines() {
            let words = shlex::split(line)
                .ok_or_else(|| format!("{path}: unbalanced quotes in {line:?}"))?;
            for word in words.into_iter().take_while(|w| !w.starts_with('#')) {
                out.push(expand_word(&word).into());
            }
        }
    }
    Ok(out)
}

/// `~` at the start, then `$VAR` and `${VAR}` (unset variables stay as written).
fn expand_word(word: &str) -> String {
    let word = match (word.strip_prefix('~'), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => word.to_owned(),
    };
    let mut out = String::with_capacity(word.len());
    let mut rest = word.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail, braced) = match after.strip_prefix('{') {
            Some(inner) => match inner.find('}') {
                Some(end) => (&inner[..end], &inner[end + 1..], true),
                None => ("", after, false),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], &after[end..], false)
            }
        };
        match std::env::var(name) {
            Ok(value) if !name.is_empty() => out.push_str(&value),
            _ if braced => out.push_str(&rest[at..rest.len() - tail.len()]),
            _ => out.push_str(&rest[at..at + 1 + name.len()]),
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Parses `args` (program name first). Syntax errors print argparse-style
/// usage and exit 2; `--help` and `--version` exit 0.
pub(crate) fn parse(args: Vec<OsString>) -> CompatArgs {
    let args = expand_files(args).unwrap_or_else(|e| usage_error(&e));
    let matches = command().get_matches_from(args);
    from_matches(&matches).unwrap_or_else(|e| usage_error(&e))
}

fn usage_error(message: &str) -> ! {
    command()
        .error(clap::error::ErrorKind::InvalidValue, message)
        .exit()
}

fn from_matches(m: &ArgMatches) -> Result<CompatArgs, String> {
    let action = if m.get_flag("encrypt") {
        Action::Encrypt
    } else if m.get_flag("decrypt") {
        Action::Decrypt
    } else {
        Action::DecryptUnsigned
    };
    let metadata = match m.get_one::<String>("metadata-output") {
        Some(path) if path.is_empty() => {
            return Err("Metadata output file name cannot be empty".into())
        }
        Some(path) => MetadataTarget::Output {
            path: path.clone(),
            overwrite: m.get_flag("overwrite-metadata"),
        },
        None => MetadataTarget::Suppressed,
    };
    let providers = m
        .get_occurrences::<String>("wrapping-keys")
        .into_iter()
        .flatten()
        .map(|group| provider_config(&group.cloned().collect::<Vec<_>>(), action))
        .collect::<Result<Vec<_>, _>>()?;
    let commitment_policy = m
        .get_one::<String>("commitment-policy")
        .map(|p| p.parse::<CommitmentPolicy>())
        .transpose()?
        .unwrap_or_default();
    let caching = m
        .get_many::<String>("caching")
        .map(|v| caching_config(&v.cloned().collect::<Vec<_>>()))
        .transpose()?;
    let mut encryption_context = Vec::new();
    let mut required_keys = Vec::new();
    for item in m
        .get_many::<String>("encryption-context")
        .into_iter()
        .flatten()
    {
        match (item.split_once('='), action) {
            (Some((k, v)), _) if !k.is_empty() && !v.is_empty() => {
                // The official tool keeps the first value given for a key.
                if !encryption_context
                    .iter()
                    .any(|(key, _): &(String, String)| key == k)
                {
                    encryption_context.push((k.to_owned(), v.to_owned()));
                }
            }
            (None, Action::Decrypt | Action::DecryptUnsigned) => required_keys.push(item.clone()),
            _ => return Err(r#"Argument parameter must follow the format "key=value""#.into()),
        }
    }
    let algorithm = m
        .get_one::<String>("algorithm")
        .map(|name| {
            suite_by_name(name).ok_or_else(|| format!("invalid choice for --algorithm: {name:?}"))
        })
        .transpose()?;
    Ok(CompatArgs {
        action,
        metadata,
        providers,
        commitment_policy,
        caching,
        input: m.get_one::<String>("input").cloned().unwrap_or_default(),
        output: m.get_one::<String>("output").cloned().unwrap_or_default(),
        encode: m.get_flag("encode"),
        decode: m.get_flag("decode"),
        encryption_context,
        required_keys,
        algorithm,
        frame_length: m.get_one::<u32>("frame-length").copied(),
        max_length: m.get_one::<u64>("max-length").copied(),
        max_encrypted_data_keys: m.get_one::<usize>("max-encrypted-data-keys").copied(),
        suffix: m.get_one::<String>("suffix").cloned(),
        interactive: m.get_flag("interactive"),
        no_overwrite: m.get_flag("no-overwrite"),
        recursive: m.get_flag("recursive"),
        quiet: m.get_flag("quiet"),
    })
}

/// `key=value` items into (key, values), every value of a repeated key kept.
fn pairs(items: &[String]) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for item in items {
        let (k, v) = item
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or(r#"Argument parameter must follow the format "key=value""#)?;
        match out.iter_mut().find(|(key, _)| key == k) {
            Some((_, values)) => values.push(v.to_owned()),
            None => out.push((k.to_owned(), vec![v.to_owned()])),
        }
    }
    Ok(out)
}

fn one(values: Vec<String>, what: &str) -> Result<String, String> {
    match <[String; 1]>::try_from(values) {
        Ok([value]) => Ok(value),
        Err(values) => Err(format!("Only one {what} may be specified per wrapping key provider configuration. {} provided.", values.len())),
    }
}

fn pseudo_bool(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Ok(true),
        "false" | "f" | "0" | "no" | "n" => Ok(false),
        _ => Err(format!(
            "Value {value} could not be parsed as true or false"
        )),
    }
}

/// Applies the official rules for one `-w` group.
fn provider_config(items: &[String], action: Action) -> Result<ProviderConfig, String> {
    let mut config = ProviderConfig::default();
    let mut discovery_given = false;
    let mut partitions = Vec::new();
    for (key, values) in pairs(items)? {
        match key.as_str() {
            "provider" => {
                let provider = one(values, "provider")?;
                if !matches!(
                    provider.as_str(),
                    "aws-kms" | "aws-encryption-sdk-cli::aws-kms"
                ) {
                    return Err(format!("unknown wrapping key provider {provider:?}: envelope's aws-encryption-cli mode supports aws-kms"));
                }
            }
            "key" => config.keys = values,
            "discovery" => {
                discovery_given = true;
                config.discovery = pseudo_bool(&one(values, "discovery")?)?;
            }
            "discovery-account" => config.discovery_accounts = values,
            "discovery-partition" => partitions = values,
            "region" => config.region = Some(one(values, "region")?),
            "profile" => config.profile = Some(one(values, "profile")?),
            other => return Err(format!("unknown wrapping key parameter {other:?}")),
        }
    }
    let filter_given = !config.discovery_accounts.is_empty() || !partitions.is_empty();
    if action == Action::Encrypt && (discovery_given || filter_given) {
        return Err(
            "Discovery attributes are supported only on decryption for AWS KMS keys".into(),
        );
    }
    if config.keys.is_empty() && action == Action::Encrypt {
        return Err(
            r#"At least one "key" must be provided for each wrapping key provider configuration"#
                .into(),
        );
    }
    if filter_given && !config.discovery {
        return Err("Discovery-account and discovery-partition are valid only when the discovery attribute is set to true".into());
    }
    if config.discovery {
        match (config.discovery_accounts.is_empty(), partitions.len()) {
            (false, 0) => {
                return Err(
                    "When specifying discovery-account, you must also specify discovery-partition"
                        .into(),
                )
            }
            (true, n) if n > 0 => {
                return Err(
                    "When specifying discovery-partition, you must also specify discovery-account"
                        .into(),
                )
            }
            (_, n) if n > 1 => return Err("You can only specify discovery-partition once".into()),
            _ => config.discovery_partition = partitions.pop(),
        }
        if !config.keys.is_empty() {
            return Err("If discovery is true (enabled), you cannot specify wrapping keys".into());
        }
    } else if config.keys.is_empty() {
        return Err(
            "When discovery is false (disabled), you must specify at least one wrapping key".into(),
        );
    }
    Ok(config)
}

fn caching_config(items: &[String]) -> Result<CachingConfig, String> {
    let mut capacity = None;
    let mut max_age = None;
    let mut config = CachingConfig {
        capacity: 0,
        max_age: 0.0,
        max_messages_encrypted: None,
        max_bytes_encrypted: None,
    };
    for (key, mut values) in pairs(items)? {
        // The official tool keeps the first value of a repeated key.
        let value = values.swap_remove(0);
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("caching {key}: {v:?} is not a whole number"))
        };
        match key.as_str() {
            "capacity" => capacity = Some(number(&value)?),
            "max_age" => {
                max_age = Some(
                    value
                        .parse::<f64>()
                        .ok()
                        .filter(|age| age.is_finite() && *age > 0.0)
                        .ok_or_else(|| {
                            format!(
                                "caching max_age: {value:?} is not a positive number of seconds"
                            )
                        })?,
                )
            }
            "max_messages_encrypted" => config.max_messages_encrypted = Some(number(&value)?),
            "max_bytes_encrypted" => config.max_bytes_encrypted = Some(number(&value)?),
            other => return Err(format!(r#"Invalid caching configuration key: "{other}""#)),
        }
    }
    match (capacity, max_age) {
        (Some(capacity), Some(max_age)) => Ok(CachingConfig {
            capacity,
            max_age,
            ..config
        }),
        _ => Err(r#"If enabling caching, both "capacity" and "max_age" are required"#.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(line: &str) -> Result<CompatArgs, String> {
        let args: Vec<OsString> = std::iter::once("aws-encryption-cli")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect();
        let matches = command()
            .try_get_matches_from(args)
            .map_err(|e| e.to_string())?;
        from_matches(&matches)
    }

    #[test]
    fn groups_and_pairs_parse_as_the_official_tool_parses_them() -> Result<(), String> {
        let args = parse_ok(
            "-e -i in -o out -w key=a key=b region=us-west-2 -w key=c -c k=v k=w x=y -S --suffix",
        )?;
        assert_eq!(args.action, Action::Encrypt);
        assert_eq!(args.providers.len(), 2);
        assert_eq!(args.providers[0].keys, ["a", "b"]);
        assert_eq!(args.providers[0].region.as_deref(), Some("us-west-2"));
        assert_eq!(
            args.encryption_context,
            [("k".into(), "v".into()), ("x".into(), "y".into())]
        );
        assert_eq!(args.suffix.as_deref(), Some(""));
        assert_eq!(args.metadata, MetadataTarget::Suppressed);

        let args = parse_ok("--decrypt --input in --output out -w discovery=true discovery-account=111122223333 discovery-partition=aws -c purpose k=v --metadata-output m --overwrite-metadata --max-length 4096 --buff")?;
        assert_eq!(args.action, Action::Decrypt);
        assert!(args.providers[0].discovery);
        assert_eq!(
            args.providers[0].discovery_partition.as_deref(),
            Some("aws")
        );
        assert_eq!(args.required_keys, ["purpose"]);
        assert!(matches!(args.max_length, Some(4096)));
        assert_eq!(
            args.metadata,
            MetadataTarget::Output {
                path: "m".into(),
                overwrite: true
            }
        );
        Ok(())
    }

    #[test]
    fn the_official_tool_s_refusals_are_refused() {
        for line in [
            "-e -i in -o out -w key=a",                        // no metadata choice
            "-e -i in -o out -w key=a -S --metadata-output m", // both metadata choices
            "-e -d -i in -o out -w key=a -S",                  // two actions
            "-e -i in -o out -w discovery=true -S",            // discovery on encrypt
            "-d -i in -o out -w discovery=true key=a -S",      // discovery with keys
            "-d -i in -o out -w discovery=false -S",           // neither
            "-d -i in -o out -w discovery=true discovery-account=1 -S", // account without partition
            "-d -i in -o out -w discovery-account=1 discovery-partition=aws key=a -S",
            "-e -i in -o out -w key=a -c novalue -S", // bare key on encrypt
            "-e -i in -o out -w key=a -c a=b -c c=d -S", // -c given twice
            "-e -i in -o out -w key=a --frame-length 1 --frame-length 2 -S",
            "-e -i in -o out -w key=a --caching capacity=10 -S", // caching without max_age
            "-e -i in -o out -w key=a --algorithm AES_512 -S",
            "-e -i in -o out -w key=a provider=raw -S",
        ] {
            assert!(parse_ok(line).is_err(), "accepted: {line}");
        }
    }

    #[test]
    fn argument_files_split_like_a_shell_with_comments_and_variables() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let file = dir.path().join("args");
        std::env::set_var(
            "ENVELOPE_COMPAT_TEST_KEY",
            "arn:aws:kms:us-east-1:111122223333:key/k",
        );
        std::fs::write(&file, "--wrapping-keys key=$ENVELOPE_COMPAT_TEST_KEY # the key\n-c 'team=blue sky'\n# only a comment\n").map_err(|e| e.to_string())?;
        let args = expand_files(vec![
            "x".into(),
            "-e".into(),
            format!("@{}", file.display()).into(),
        ])?;
        let words: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            words,
            [
                "x",
                "-e",
                "--wrapping-keys",
                "key=arn:aws:kms:us-east-1:111122223333:key/k",
                "-c",
                "team=blue sky"
            ]
        );
        Ok(())
    }
}
