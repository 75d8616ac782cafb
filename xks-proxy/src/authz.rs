//! Secondary authorization: a per-key-store policy over the request
//! metadata KMS sends.
//!
//! SigV4 proves a request comes from KMS; it says nothing about *which*
//! AWS principal is behind it. The policy lets the key store's owner
//! restrict that, independently of the KMS key policy (the spec calls this
//! secondary authorization).
//!
//! A policy is a TOML file of statements:
//!
//! ```toml
//! [[statement]]
//! sid = "no-bob"
//! effect = "deny"
//! principals = ["arn:aws:iam::111122223333:user/bob"]
//!
//! [[statement]]
//! sid = "app-role"
//! effect = "allow"
//! principals = ["arn:aws:iam::111122223333:role/app-*"]
//! operations = ["Encrypt", "Decrypt", "GenerateDataKey*"]
//! key_ids = ["app-*"]
//! ```
//!
//! Each condition (`principals`, `operations` = `kmsOperation`,
//! `via_services` = `kmsViaService`, `source_vpcs` = `awsSourceVpc`,
//! `source_vpces` = `awsSourceVpce`, `key_ids`) is a list of patterns where
//! `*` matches any run of characters and `?` one byte. An omitted list
//! matches anything; a present list matches only when the request carries
//! the field and one pattern matches it. A statement matches when all its
//! conditions do.
//!
//! Evaluation: any matching `deny` wins; otherwise a matching `allow`
//! allows; otherwise the request is denied (once a policy exists, anything
//! it does not allow is denied). Health requests are never evaluated.

use std::path::Path;

use serde::Deserialize;

use crate::api::types::RequestMetadata;

/// A policy file problem.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy {path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid policy.
    #[error("invalid policy {path}: {source}")]
    Parse {
        /// The file.
        path: std::path::PathBuf,
        /// The TOML error.
        source: toml::de::Error,
    },
    /// A statement is inconsistent.
    #[error("invalid policy {path}: {message}")]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Allows the request unless a deny also matches.
    Allow,
    /// Denies the request.
    Deny,
}

/// One policy statement.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// A unique name, logged when the statement decides a request.
    pub sid: String,
    /// Allow or deny.
    pub effect: Effect,
    /// `awsPrincipalArn` patterns.
    pub principals: Option<Vec<String>>,
    /// `kmsOperation` patterns (`Encrypt`, `Decrypt`, `GenerateDataKey*`...).
    pub operations: Option<Vec<String>>,
    /// `kmsViaService` patterns.
    pub via_services: Option<Vec<String>>,
    /// `awsSourceVpc` patterns.
    pub source_vpcs: Option<Vec<String>>,
    /// `awsSourceVpce` patterns.
    pub source_vpces: Option<Vec<String>>,
    /// XKS key id (from the URI) patterns.
    pub key_ids: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    statement: Vec<Statement>,
}

/// A loaded policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// What the policy decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the statement with this sid.
    Allow(String),
    /// Denied by the statement with this sid.
    Deny(String),
    /// No statement allowed the request.
    ImplicitDeny,
}

impl Decision {
    /// The rule to log: the statement's sid, or `implicit-deny`.
    pub fn rule(&self) -> &str {
        match self {
            Decision::Allow(s) | Decision::Deny(s) => s,
            Decision::ImplicitDeny => "implicit-deny",
        }
    }

    /// Whether the request may proceed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// `*` matches any run (possibly empty), `?` exactly one byte (ARNs, VPC
/// ids and key ids are ASCII). The classic two-pointer algorithm: no
/// allocation, at worst O(pattern × text), never exponential.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                // Let the last `*` swallow one more character and retry.
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

fn condition(patterns: &Option<Vec<String>>, value: Option<&str>) -> bool {
    match (patterns, value) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(ps), Some(v)) => ps.iter().any(|p| glob_match(p, v)),
    }
}

impl Statement {
    fn matches(&self, meta: &RequestMetadata, key_id: &str) -> bool {
        condition(&self.principals, meta.aws_principal_arn.as_deref())
            && condition(&self.operations, Some(&meta.kms_operation))
            && condition(&self.via_services, meta.kms_via_service.as_deref())
            && condition(&self.source_vpcs, meta.aws_source_vpc.as_deref())
            && condition(&self.source_vpces, meta.aws_source_vpce.as_deref())
            && condition(&self.key_ids, Some(key_id))
    }
}

impl Policy {
    /// A policy from statements (validated: unique, non-empty sids).
    pub fn new(statements: Vec<Statement>) -> Result<Policy, String> {
        let mut seen = std::collections::HashSet::new();
        for s in &statements {
            if s.sid.is_empty() || !seen.insert(s.sid.as_str()) {
                return Err(format!("sid {:?} is empty or used twice", s.sid));
            }
        }
        Ok(Policy { statements })
    }

    /// Parses a policy from TOML text.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|source| PolicyError::Parse {
            path: path.to_owned(),
            source,
        })?;
        Policy::new(file.statement).map_err(|message| PolicyError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Reads and parses a policy file.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Policy::parse(&text, path)
    }

    /// Evaluates a key operation: explicit deny, then allow, then deny.
    pub fn evaluate(&self, meta: &RequestMetadata, key_id: &str) -> Decision {
        let mut allow = None;
        for s in &self.statements {
            if !s.matches(meta, key_id) {
                continue;
            }
            match s.effect {
                Effect::Deny => return Decision::Deny(s.sid.clone()),
                Effect::Allow => {
                    allow.get_or_insert(&s.sid);
                }
            }
        }
        allow.map_or(Decision::ImplicitDeny, |sid| Decision::Allow(sid.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match(
            "arn:aws:iam::*:role/app-*",
            "arn:aws:iam::1:role/app-x"
        ));
        assert!(!glob_match(
            "arn:aws:iam::*:role/app-*",
            "arn:aws:iam::1:user/app-x"
        ));
        assert!(glob_match(
            "*a*a*a*b",
            &"a".repeat(40).replace("aaaa", "aaab")
        ));
        assert!(!glob_match(&"*a".repeat(30), &"a".repeat(29)));
        assert!(!glob_match("abc", "abcd"));
    }

    fn meta(principal: &str, op: &str) -> RequestMetadata {
        RequestMetadata {
            kms_request_id: "r".into(),
            kms_operation: op.into(),
            aws_principal_arn: Some(principal.into()),
            ..Default::default()
        }
    }

    const POLICY: &str = r#"
[[statement]]
sid = "deny-bob"
effect = "deny"
principals = ["arn:aws:iam::1:user/bob"]

[[statement]]
sid = "deny-decrypt-outside-vpc"
effect = "deny"
operations = ["Decrypt"]
source_vpcs = ["vpc-other"]

[[statement]]
sid = "allow-users"
effect = "allow"
principals = ["arn:aws:iam::1:user/*"]
key_ids = ["k*"]
"#;

    #[test]
    fn deny_wins_then_allow_then_implicit_deny() {
        let p = Policy::parse(POLICY, Path::new("p.toml")).unwrap();
        let alice = meta("arn:aws:iam::1:user/alice", "Encrypt");
        assert_eq!(
            p.evaluate(&alice, "k1"),
            Decision::Allow("allow-users".into())
        );
        assert_eq!(p.evaluate(&alice, "other"), Decision::ImplicitDeny);
        let bob = meta("arn:aws:iam::1:user/bob", "Encrypt");
        assert_eq!(p.evaluate(&bob, "k1"), Decision::Deny("deny-bob".into()));
        let mut vpc = meta("arn:aws:iam::1:user/alice", "Decrypt");
        // A condition on an absent field does not match.
        assert!(p.evaluate(&vpc, "k1").allowed());
        vpc.aws_source_vpc = Some("vpc-other".into());
        assert_eq!(p.evaluate(&vpc, "k1").rule(), "deny-decrypt-outside-vpc");
        let anon = RequestMetadata::default();
        assert_eq!(p.evaluate(&anon, "k1"), Decision::ImplicitDeny);
    }

    #[test]
    fn example_policy_is_valid() {
        let p = Policy::parse(
            include_str!("../deploy/policy.example.toml"),
            Path::new("policy.example.toml"),
        )
        .unwrap();
        let app = meta("arn:aws:iam::111122223333:role/app-web", "GenerateDataKey");
        assert_eq!(
            p.evaluate(&app, "app-key-1").rule(),
            "app-roles-use-app-keys"
        );
        let gone = meta("arn:aws:iam::111122223333:user/contractor-7", "Encrypt");
        assert_eq!(
            p.evaluate(&gone, "app-key-1").rule(),
            "deny-offboarded-contractor"
        );
    }

    #[test]
    fn rejects_bad_policies() {
        let path = Path::new("p.toml");
        assert!(Policy::parse("[[statement]]\nsid = \"a\"\neffect = \"maybe\"\n", path).is_err());
        assert!(Policy::parse(
            "[[statement]]\nsid = \"a\"\neffect = \"allow\"\nprincipal = []\n",
            path
        )
        .is_err());
        let dup = "[[statement]]\nsid = \"a\"\neffect = \"allow\"\n[[statement]]\nsid = \"a\"\neffect = \"deny\"\n";
        assert!(Policy::parse(dup, path).is_err());
        // An empty policy denies everything.
        let empty = Policy::parse("", path).unwrap();
        assert_eq!(
            empty.evaluate(&meta("x", "Encrypt"), "k"),
            Decision::ImplicitDeny
        );
    }
}
