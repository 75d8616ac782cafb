"""Measures the official Python ESDK's caching materials manager on cache
hits, for the bench report, which interleaves it with its own contenders.

Usage: python_esdk_cache.py SUITE SIZE. Prints "ready" and the versions of
the ESDK and of `cryptography` (which sets much of its speed) once warm, then for
each line "encrypt SECONDS" or "decrypt SECONDS" on stdin runs that many
seconds of cache-hit operations and prints the messages per second."""
import sys
import time

import aws_encryption_sdk
import cryptography
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

SUITES = {
    "0478": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    "0578": Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
}


class Provider(RawMasterKeyProvider):
    provider_id = "bench"

    def _get_raw_key(self, key_id):
        return WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=b"\x07" * 32,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )


def rate(fn, seconds):
    fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def main():
    suite, size = sys.argv[1], int(sys.argv[2])
    provider = Provider()
    provider.add_master_key("key")
    cmm = aws_encryption_sdk.CachingCryptoMaterialsManager(
        master_key_provider=provider,
        cache=aws_encryption_sdk.LocalCryptoMaterialsCache(capacity=100),
        max_age=600.0,
        max_messages_encrypted=2**32,
    )
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    plaintext = b"x" * size
    context = {"tenant": "acme", "purpose": "bench"}

    def encrypt():
        return client.encrypt(source=plaintext, materials_manager=cmm, encryption_context=context,
                              algorithm=SUITES[suite])

    message, _ = encrypt()
    ops = {
        "encrypt": encrypt,
        "decrypt": lambda: client.decrypt(source=message, materials_manager=cmm),
    }
    versions = f"aws-encryption-sdk {aws_encryption_sdk.__version__}, cryptography {cryptography.__version__}"
    print("ready", versions, flush=True)
    for line in sys.stdin:
        op, seconds = line.split()
        print(rate(ops[op], float(seconds)), flush=True)


if __name__ == "__main__":
    main()
