//! AWS KMS key identifiers: ARNs, multi-Region keys and the MRK match rule.
//!
//! Follows the ESDK specification's "AWS KMS Key ARN" and "AWS KMS MRK
//! Match for Decrypt" sections: an ARN is
//! `arn:PARTITION:kms:REGION:ACCOUNT:key/ID` or `...:alias/NAME`, and a
//! multi-Region key (MRK) is a key whose id starts with `mrk-`.

use std::fmt;

/// What an ARN names: a key or an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    /// `key/ID`.
    Key,
    /// `alias/NAME`.
    Alias,
}

/// A parsed AWS KMS ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsArn {
    /// The partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub partition: String,
    /// The region the key lives in.
    pub region: String,
    /// The account that owns the key.
    pub account: String,
    /// Key or alias.
    pub resource_type: ResourceType,
    /// The key id or alias name.
    pub resource_id: String,
}

/// Why a string is not an AWS KMS ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnArn(&'static str);

impl fmt::Display for NotAnArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an AWS KMS ARN: {}", self.0)
    }
}

impl std::error::Error for NotAnArn {}

impl KmsArn {
    /// Parses `arn:PARTITION:kms:REGION:ACCOUNT:(key|alias)/ID`.
    pub fn parse(s: &str) -> Result<Self, NotAnArn> {
        let mut parts = s.splitn(6, ':');
        let mut next = |what| parts.next().ok_or(NotAnArn(what));
        if next("missing \"arn\" prefix")? != "arn" {
            return Err(NotAnArn("must start with \"arn:\""));
        }
        let partition = next("missing partition")?;
        let service = next("missing service")?;
        let region = next("missing region")?;
        let account = next("missing account")?;
        let resource = next("missing resource")?;
        if partition.is_empty() {
            return Err(NotAnArn("empty partition"));
        }
        if service != "kms" {
            return Err(NotAnArn("service is not \"kms\""));
        }
        if region.is_empty() {
            return Err(NotAnArn("empty region"));
        }
        if account.is_empty() {
            return Err(NotAnArn("empty account"));
        }
        let (kind, id) = resource
            .split_once('/')
            .ok_or(NotAnArn("resource has no '/'"))?;
        let resource_type = match kind {
            "key" => ResourceType::Key,
            "alias" => ResourceType::Alias,
            _ => return Err(NotAnArn("resource type is neither \"key\" nor \"alias\"")),
        };
        if id.is_empty() {
            return Err(NotAnArn("empty resource id"));
        }
        Ok(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource_type,
            resource_id: id.to_owned(),
        })
    }

    /// Whether this ARN names a multi-Region key.
    pub fn is_mrk(&self) -> bool {
        self.resource_type == ResourceType::Key && self.resource_id.starts_with("mrk-")
    }

    /// The same ARN in another region (how an MRK replica is named).
    pub fn with_region(&self, region: &str) -> Self {
        Self {
            region: region.to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Display for KmsArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.resource_type {
            ResourceType::Key => "key",
            ResourceType::Alias => "alias",
        };
        write!(
            f,
            "arn:{}:kms:{}:{}:{}/{}",
            self.partition, self.region, self.account, kind, self.resource_id
        )
    }
}

/// The region named by a key identifier, if it is an ARN.
pub(crate) fn region_of(key_id: &str) -> Option<String> {
    KmsArn::parse(key_id).ok().map(|arn| arn.region)
}

/// "AWS KMS MRK Match for Decrypt": identical identifiers match; otherwise
/// two MRK ARNs match when everything but the region is equal.
pub fn mrk_match(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (KmsArn::parse(a), KmsArn::parse(b)) {
        (Ok(x), Ok(y)) if x.is_mrk() && y.is_mrk() => {
            x.partition == y.partition
                && x.account == y.account
                && x.resource_type == y.resource_type
                && x.resource_id == y.resource_id
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const MRK_E: &str =
        "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";
    const MRK_W: &str =
        "arn:aws:kms:us-west-2:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

    #[test]
    fn parses_and_prints_key_and_alias_arns() {
        let arn = KmsArn::parse(KEY).unwrap();
        assert_eq!(arn.partition, "aws");
        assert_eq!(arn.region, "us-east-1");
        assert_eq!(arn.account, "111122223333");
        assert_eq!(arn.resource_type, ResourceType::Key);
        assert!(!arn.is_mrk());
        assert_eq!(arn.to_string(), KEY);
        let alias = KmsArn::parse("arn:aws:kms:us-east-1:111122223333:alias/my/app").unwrap();
        assert_eq!(alias.resource_type, ResourceType::Alias);
        assert_eq!(alias.resource_id, "my/app");
        assert!(KmsArn::parse(MRK_E).unwrap().is_mrk());
    }

    #[test]
    fn rejects_malformed_arns() {
        for bad in [
            "",
            "alias/foo",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:s3:us-east-1:111122223333:key/x",
            "arn::kms:us-east-1:111122223333:key/x",
            "arn:aws:kms::111122223333:key/x",
            "arn:aws:kms:us-east-1::key/x",
            "arn:aws:kms:us-east-1:111122223333:key/",
            "arn:aws:kms:us-east-1:111122223333:keyx",
            "arn:aws:kms:us-east-1:111122223333:grant/x",
            "arn:aws:kms:us-east-1",
        ] {
            assert!(KmsArn::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn mrk_match_ignores_region_only_for_mrks() {
        assert!(mrk_match(MRK_E, MRK_W));
        assert!(mrk_match(KEY, KEY));
        assert!(!mrk_match(
            KEY,
            &KmsArn::parse(KEY)
                .unwrap()
                .with_region("us-west-2")
                .to_string()
        ));
        assert!(!mrk_match(
            MRK_E,
            &MRK_W.replace("111122223333", "444455556666")
        ));
        assert!(!mrk_match("mrk-1234abcd12ab34cd56ef1234567890ab", MRK_W));
        assert_eq!(
            KmsArn::parse(MRK_E)
                .unwrap()
                .with_region("us-west-2")
                .to_string(),
            MRK_W
        );
    }
}
