"""The official Python ESDK's side of the raw AES interop test.

Reads a JSON job: decrypts the messages our library wrote (checking the
plaintext and context) and encrypts the same plaintexts for our library to
decrypt. Uses RawMasterKey, whose EDKs are byte-identical to the raw AES
keyring's. Prints one line per check and exits non-zero on any failure.
"""
import json
import sys

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

SUITES = {
    "0x0478": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    "0x0578": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
}


def provider(namespace, name, key):
    class Provider(RawMasterKeyProvider):
        provider_id = namespace

        def _get_raw_key(self, key_id):
            return WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=key,
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            )

    p = Provider()
    p.add_master_key(name)
    return p


def main():
    job = json.load(open(sys.argv[1]))
    key = open(job["key_file"], "rb").read()
    kp = provider(job["namespace"], job["name"], key)
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    failures = 0
    for case in job["decrypt"]:
        expected = open(case["plaintext"], "rb").read()
        try:
            plaintext, header = client.decrypt(source=open(case["ciphertext"], "rb").read(), key_provider=kp)
            ok = plaintext == expected and all(header.encryption_context.get(k) == v for k, v in case["context"].items())
        except Exception as e:  # report and count every failure
            print(f"python decrypt {case['ciphertext']}: {e!r}")
            ok = False
        failures += not ok
        print(f"python-decrypt {case['ciphertext']}: {'ok' if ok else 'FAILED'}")
    for case in job["encrypt"]:
        ciphertext, _ = client.encrypt(
            source=open(case["plaintext"], "rb").read(),
            key_provider=kp,
            encryption_context=case["context"],
            algorithm=SUITES[case["suite"]],
            frame_length=case["frame_length"],
        )
        open(case["ciphertext"], "wb").write(ciphertext)
        print(f"python-encrypt {case['ciphertext']}: ok")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
