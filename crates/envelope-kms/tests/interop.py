"""The official Python AWS Encryption SDK's KMS path, for interop tests.

Usage:
  interop.py encrypt KEY_ARN CONTEXT_JSON IN OUT
  interop.py decrypt KEY_ARN CONTEXT_JSON IN OUT

botocore reaches the emulator through AWS_ENDPOINT_URL_KMS and the static
test credentials in the environment. Decrypt checks that every pair of
CONTEXT_JSON is in the message's context and prints that context as JSON.
"""
import json
import sys

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy


def main():
    mode, key_arn, context_json, in_path, out_path = sys.argv[1:6]
    context = json.loads(context_json)
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn])
    with open(in_path, "rb") as f:
        data = f.read()
    if mode == "encrypt":
        out, _header = client.encrypt(source=data, encryption_context=context, key_provider=provider)
    elif mode == "decrypt":
        out, header = client.decrypt(source=data, key_provider=provider)
        for key, value in context.items():
            if header.encryption_context.get(key) != value:
                sys.exit(f"context pair {key!r} missing or different")
        print(json.dumps(header.encryption_context, sort_keys=True))
    else:
        sys.exit(f"unknown mode {mode!r}")
    with open(out_path, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
