"""Measures the official Python hierarchical keyring on branch-key cache
hits, for the hierarchy bench, which interleaves it with its own contenders.
Usage: python_hierarchy.py ENDPOINT SIZE, with ENDPOINT a moto server (the
bench starts one). Sets up a KMS key, the key store table and a branch key,
prints "ready" and versions once warm, then for each line "encrypt SECONDS"
or "decrypt SECONDS" runs that long and prints the messages per second."""
import sys
import time

import aws_encryption_sdk
import boto3
import cryptography
from aws_cryptographic_material_providers.keystore import KeyStore
from aws_cryptographic_material_providers.keystore.config import KeyStoreConfig
from aws_cryptographic_material_providers.keystore.models import (
    CreateKeyInput,
    CreateKeyStoreInput,
    KMSConfigurationKmsKeyArn,
)
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import (
    CacheTypeDefault,
    CreateAwsKmsHierarchicalKeyringInput,
    DefaultCache,
)
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy


def rate(fn, seconds):
    fn()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def main():
    endpoint, size = sys.argv[1], int(sys.argv[2])
    session = dict(endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="bench", aws_secret_access_key="bench")
    kms = boto3.client("kms", **session)
    ddb = boto3.client("dynamodb", **session)
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    store = KeyStore(config=KeyStoreConfig(ddb_client=ddb, ddb_table_name="bench-branch-keys",
                                           logical_key_store_name="bench-branch-keys", kms_client=kms,
                                           kms_configuration=KMSConfigurationKmsKeyArn(arn)))
    store.create_key_store(input=CreateKeyStoreInput())
    branch_key_id = store.create_key(input=CreateKeyInput()).branch_key_identifier
    keyring = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig()).create_aws_kms_hierarchical_keyring(
        input=CreateAwsKmsHierarchicalKeyringInput(key_store=store, branch_key_id=branch_key_id, ttl_seconds=600,
                                                   cache=CacheTypeDefault(DefaultCache(entry_capacity=100))))
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    plaintext = b"x" * size
    context = {"tenant": "acme", "purpose": "bench"}

    def encrypt():
        return client.encrypt(source=plaintext, keyring=keyring, encryption_context=context,
                              algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY)

    message, _ = encrypt()
    ops = {"encrypt": encrypt, "decrypt": lambda: client.decrypt(source=message, keyring=keyring)}
    print("ready", f"aws-encryption-sdk {aws_encryption_sdk.__version__}, cryptography {cryptography.__version__}",
          flush=True)
    for line in sys.stdin:
        op, seconds = line.split()
        print(rate(ops[op], float(seconds)), flush=True)


if __name__ == "__main__":
    main()
