"""The official Python ESDK's side of the 100 MiB streaming interop test.

  esdk_stream.py decrypt KEYFILE IN OUT   decrypts our message, streaming
  esdk_stream.py encrypt KEYFILE IN OUT   encrypts with 0x0578, 4096-byte frames
"""
import sys

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider


KEY = {}


class Provider(RawMasterKeyProvider):
    provider_id = "interop-stream"

    def _get_raw_key(self, key_id):
        return WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=KEY["wrapping"],
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )


def main():
    mode, key_file, source, target = sys.argv[1:5]
    KEY["wrapping"] = open(key_file, "rb").read()
    provider = Provider()
    provider.add_master_key("stream-key")
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    with open(source, "rb") as src, open(target, "wb") as dst:
        if mode == "encrypt":
            with client.stream(mode="e", source=src, key_provider=provider, frame_length=4096,
                               encryption_context={"file": "big.bin"},
                               algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384) as stream:
                for chunk in stream:
                    dst.write(chunk)
        else:
            with client.stream(mode="d", source=src, key_provider=provider) as stream:
                for chunk in stream:
                    dst.write(chunk)
                assert stream.header.encryption_context.get("file") == "big.bin"


if __name__ == "__main__":
    main()
