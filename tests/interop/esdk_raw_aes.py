"""The official Python ESDK's side of the peer matrix (raw AES keys).

Reads a JSON job: decrypts the messages our library wrote (checking the
plaintext and the context) and encrypts the same plaintexts, with the same
suite and frame length, for our library to decrypt. Runs unchanged under the
3.x and 4.x lines. Uses RawMasterKey, whose EDKs are byte-identical to the
raw AES keyring's. Prints one line per check and exits non-zero on any
failure.
"""
import json
import sys

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider


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
    # Decrypt accepts every suite; encrypt needs the policy that allows the suite.
    decryptor = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    committing = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    legacy = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
    failures = 0
    for case in job["decrypt"]:
        expected = open(case["plaintext"], "rb").read()
        try:
            plaintext, header = decryptor.decrypt(source=open(case["ciphertext"], "rb").read(), key_provider=kp)
            ok = (
                plaintext == expected
                and header.algorithm.algorithm_id == case["suite"]
                and all(header.encryption_context.get(k) == v for k, v in case["context"].items())
            )
        except Exception as e:  # report and count every failure
            print(f"python decrypt {case['ciphertext']}: {e!r}")
            ok = False
        failures += not ok
        print(f"python-decrypt {case['ciphertext']}: {'ok' if ok else 'FAILED'}")
    for case in job["encrypt"]:
        algorithm = Algorithm.get_by_id(case["suite"])
        client = committing if algorithm.is_committing() else legacy
        ciphertext, _ = client.encrypt(
            source=open(case["plaintext"], "rb").read(),
            key_provider=kp,
            encryption_context=case["context"],
            algorithm=algorithm,
            frame_length=case["frame_length"],
        )
        open(case["ciphertext"], "wb").write(ciphertext)
        print(f"python-encrypt {case['ciphertext']}: ok")
    print(f"{aws_encryption_sdk.__version__}: {len(job['decrypt'])} decrypted, {len(job['encrypt'])} encrypted, {failures} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
