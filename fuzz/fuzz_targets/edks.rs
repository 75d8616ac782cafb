//! Fuzzes the keyrings' EDK parsing: raw AES (provider info with tag and IV
//! lengths), raw RSA (every fourth input, since a private-key operation is
//! slow), the hierarchical keyring (its ciphertext layout and version, on a
//! static key store), a KMS key ARN and an XKS key URI. Any input must give
//! a typed error or a key, never a panic.
//!
//! Run: `scripts/fuzz.sh edks 600`.

#![no_main]

use std::sync::{Arc, OnceLock};

use envelope_core::keyring::Keyring;
use envelope_core::materials::DecryptionMaterials;
use envelope_core::{
    AlgorithmSuite, EncryptedDataKey, EncryptionContext, RawAesKeyring, RawRsaKeyring, RsaPadding,
};
use envelope_hierarchy::{BranchKeyCache, BranchKeyVersion, HierarchicalKeyring, StaticKeyStore};
use libfuzzer_sys::fuzz_target;

struct Keyrings {
    aes: RawAesKeyring,
    rsa: RawRsaKeyring,
    hierarchy: HierarchicalKeyring,
    runtime: tokio::runtime::Runtime,
}

fn keyrings() -> &'static Keyrings {
    static KEYRINGS: OnceLock<Keyrings> = OnceLock::new();
    KEYRINGS.get_or_init(|| {
        let keys: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/vectors/esdk/v4-Net-4.0.1/keys.json"
            ))
            .expect("the ESDK vectors' keys.json"),
        )
        .expect("json");
        let private = keys["keys"]["rsa-4096-private"]["material"]
            .as_str()
            .expect("pem");
        let store = Arc::new(StaticKeyStore::new(
            "fuzz-branch-key",
            BranchKeyVersion::parse("e9ce18a3-edb5-4272-9f86-1cacb7997ff6").expect("uuid"),
            [5; 32],
        ));
        Keyrings {
            aes: RawAesKeyring::new("ns", "aes", &[3; 32]).expect("aes"),
            rsa: RawRsaKeyring::from_pem("ns", "rsa", RsaPadding::OaepSha256, None, Some(private))
                .expect("rsa"),
            hierarchy: HierarchicalKeyring::builder(store)
                .branch_key_id("fuzz-branch-key")
                .cache(BranchKeyCache::new(4, std::time::Duration::from_secs(3600)))
                .build()
                .expect("hierarchy"),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime"),
        }
    })
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let _ = envelope_kms::arn::KmsArn::parse(&text);
    let _ = envelope_xks::XksKeyUri::parse(&text);

    let k = keyrings();
    let suite = AlgorithmSuite::ALL[usize::from(selector) % AlgorithmSuite::ALL.len()];
    let split = rest.len().min(usize::from(selector >> 4) * 4);
    let (info_tail, ciphertext) = rest.split_at(split);
    let mut edks = vec![
        EncryptedDataKey {
            provider_id: "ns".into(),
            provider_info: [b"aes".as_slice(), info_tail].concat(),
            ciphertext: ciphertext.to_vec(),
        },
        EncryptedDataKey {
            provider_id: envelope_hierarchy::PROVIDER_ID.into(),
            provider_info: b"fuzz-branch-key".to_vec(),
            ciphertext: ciphertext.to_vec(),
        },
    ];
    let context: EncryptionContext = [("k", "v")].into_iter().collect();
    k.runtime.block_on(async {
        for keyring in [&k.aes as &dyn Keyring, &k.hierarchy] {
            let mut materials = DecryptionMaterials::new(suite, context.clone());
            let _ = keyring.on_decrypt(&mut materials, &edks).await;
        }
        if selector % 4 == 0 {
            edks[0].provider_info = b"rsa".to_vec();
            let mut materials = DecryptionMaterials::new(suite, context.clone());
            let _ = k.rsa.on_decrypt(&mut materials, &edks[..1]).await;
        }
    });
});
