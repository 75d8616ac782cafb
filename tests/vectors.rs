//! Decrypts every offline vector of the official ESDK decrypt manifests in
//! `../shared/vectors/esdk` and checks the plaintext. AWS KMS vectors need
//! real AWS and are counted as skipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use envelope::keyring::Keyring;
use envelope::{
    Client, CommitmentPolicy, DefaultMaterialsManager, EncryptionContext, MaterialsManager,
    MultiKeyring, RawAesKeyring, RawRsaKeyring, RequiredContextMaterialsManager, RsaPadding,
};
use serde_json::Value;

fn vectors_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/esdk");
    assert!(
        root.is_dir(),
        "the ESDK test vectors are missing: expected them at {} (the shared/ folder beside the repository)",
        root.display()
    );
    root
}

fn read_uri(dir: &Path, uri: &str) -> Vec<u8> {
    let path = dir.join(uri.strip_prefix("file://").expect("file:// URI"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn keyring_for(master_key: &Value, keys: &Value) -> Option<Arc<dyn Keyring>> {
    if master_key["type"] != "raw" {
        return None;
    }
    let key = &keys[master_key["key"].as_str().expect("key id")];
    let namespace = master_key["provider-id"].as_str().expect("provider-id");
    let name = key["key-id"].as_str().expect("key-id");
    match master_key["encryption-algorithm"].as_str() {
        Some("aes") => {
            let material = base64::engine::general_purpose::STANDARD
                .decode(key["material"].as_str().expect("material"))
                .expect("base64 key");
            Some(Arc::new(
                RawAesKeyring::new(namespace, name, &material).expect("aes keyring"),
            ))
        }
        Some("rsa") => {
            let padding = match (
                master_key["padding-algorithm"].as_str(),
                master_key["padding-hash"].as_str(),
            ) {
                (Some("pkcs1"), _) => RsaPadding::Pkcs1,
                (Some("oaep-mgf1"), Some("sha1")) => RsaPadding::OaepSha1,
                (Some("oaep-mgf1"), Some("sha256")) => RsaPadding::OaepSha256,
                (Some("oaep-mgf1"), Some("sha384")) => RsaPadding::OaepSha384,
                (Some("oaep-mgf1"), Some("sha512")) => RsaPadding::OaepSha512,
                other => panic!("unknown RSA padding {other:?}"),
            };
            let pem = key["material"].as_str().expect("pem");
            let (public, private) = if key["type"] == "private" {
                (None, Some(pem))
            } else {
                (Some(pem), None)
            };
            Some(Arc::new(
                RawRsaKeyring::from_pem(namespace, name, padding, public, private)
                    .expect("rsa keyring"),
            ))
        }
        other => panic!("unknown encryption algorithm {other:?}"),
    }
}

#[derive(Default, Debug)]
struct Tally {
    passed: usize,
    skipped: usize,
    failed: Vec<String>,
}

fn run_manifest(dir: &Path, tally: &mut Tally) {
    let manifest: Value =
        serde_json::from_slice(&read_uri(dir, "file://manifest.json")).expect("manifest json");
    let keys: Value =
        serde_json::from_slice(&read_uri(dir, manifest["keys"].as_str().expect("keys uri")))
            .expect("keys json");
    let keys = &keys["keys"];
    let tests = manifest["tests"].as_object().expect("tests");
    for (name, test) in tests {
        let master_keys = test["master-keys"].as_array().expect("master-keys");
        let keyrings: Option<Vec<_>> = master_keys.iter().map(|mk| keyring_for(mk, keys)).collect();
        let Some(mut keyrings) = keyrings else {
            tally.skipped += 1;
            continue;
        };
        let keyring: Arc<dyn Keyring> = if keyrings.len() == 1 {
            keyrings.remove(0)
        } else {
            Arc::new(MultiKeyring::new(None, keyrings).expect("multi"))
        };
        let context: EncryptionContext = test["encryption-context"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let mut cmm: Arc<dyn MaterialsManager> = Arc::new(DefaultMaterialsManager::new(keyring));
        if test["cmm"] == "RequiredEncryptionContext" {
            cmm = Arc::new(RequiredContextMaterialsManager::new(
                cmm,
                context.iter().map(|(k, _)| k.to_owned()),
            ));
        }
        let client = Client::builder()
            .materials_manager(cmm)
            .commitment_policy(CommitmentPolicy::RequireEncryptAllowDecrypt)
            .build()
            .expect("client");
        let ciphertext = read_uri(dir, test["ciphertext"].as_str().expect("ciphertext"));
        let result = client.decrypt_blocking(&ciphertext, &context);
        match (&test["result"]["output"]["plaintext"], result) {
            (Value::String(uri), Ok(decrypted)) if decrypted.plaintext == read_uri(dir, uri) => {
                tally.passed += 1
            }
            (Value::String(_), Ok(_)) => tally.failed.push(format!("{name}: wrong plaintext")),
            (Value::String(_), Err(e)) => tally.failed.push(format!("{name}: {e}")),
            (_, Err(_)) if test["result"].get("error").is_some() => tally.passed += 1,
            (_, Ok(_)) => tally
                .failed
                .push(format!("{name}: expected an error, decrypted")),
            (other, Err(e)) => tally
                .failed
                .push(format!("{name}: unexpected result {other} / {e}")),
        }
    }
}

#[test]
fn official_decrypt_vectors() {
    let root = vectors_root();
    let mut tally = Tally::default();
    let mut sets: Vec<_> = std::fs::read_dir(&root)
        .expect("vectors dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    sets.sort();
    assert!(!sets.is_empty(), "no manifests under {}", root.display());
    for set in &sets {
        run_manifest(set, &mut tally);
    }
    println!(
        "ESDK vectors: {}/{} offline vectors passed, {} AWS KMS vectors skipped (need real AWS)",
        tally.passed,
        tally.passed + tally.failed.len(),
        tally.skipped
    );
    assert!(
        tally.failed.is_empty(),
        "failures:\n{}",
        tally.failed.join("\n")
    );
    assert_eq!(tally.passed, 104, "expected 104 offline vectors (99 + 5)");
}
