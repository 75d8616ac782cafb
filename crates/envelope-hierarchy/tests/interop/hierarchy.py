"""The official Python hierarchical keyring's side of the interop tests.

Reads a JSON job: {"endpoint", "region", "table", "logical_name", "kms_arn",
"steps": [...]}, runs each step against one moto server (DynamoDB + KMS) and
prints one JSON line per step with its result. Steps:

  {"op": "create_table"}
  {"op": "create_key", "branch_key_id": opt, "context": opt}  -> {"branch_key_id"}
  {"op": "version_key", "branch_key_id"}
  {"op": "encrypt", "branch_key_id", "suite", "plaintext", "ciphertext", "context"}
  {"op": "decrypt", "branch_key_id", "ciphertext", "plaintext", "context"}  -> {"ok"}
  {"op": "static_items", "branch_key_id", "version", "key_b64"}
      writes a branch key of known bytes (KMS Encrypt of them under each
      item's context), for the offline vector.

Uses aws-cryptographic-material-providers with aws-encryption-sdk 4.x.
"""
import base64
import datetime
import json
import sys

import aws_encryption_sdk
import boto3
from aws_cryptographic_material_providers.keystore import KeyStore
from aws_cryptographic_material_providers.keystore.config import KeyStoreConfig
from aws_cryptographic_material_providers.keystore.models import (
    CreateKeyInput,
    CreateKeyStoreInput,
    KMSConfigurationKmsKeyArn,
    VersionKeyInput,
)
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import (
    CacheTypeDefault,
    CreateAwsKmsHierarchicalKeyringInput,
    DefaultCache,
)
from aws_encryption_sdk.identifiers import Algorithm, CommitmentPolicy


def main():
    job = json.load(open(sys.argv[1]))
    session = dict(endpoint_url=job["endpoint"], region_name=job["region"])
    ddb = boto3.client("dynamodb", **session)
    kms = boto3.client("kms", **session)
    store = KeyStore(
        config=KeyStoreConfig(
            ddb_client=ddb,
            ddb_table_name=job["table"],
            logical_key_store_name=job["logical_name"],
            kms_client=kms,
            kms_configuration=KMSConfigurationKmsKeyArn(job["kms_arn"]),
        )
    )
    mpl = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT)
    legacy = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT)
    keyrings = {}

    def keyring(branch_key_id):
        if branch_key_id not in keyrings:
            keyrings[branch_key_id] = mpl.create_aws_kms_hierarchical_keyring(
                input=CreateAwsKmsHierarchicalKeyringInput(
                    key_store=store,
                    branch_key_id=branch_key_id,
                    ttl_seconds=600,
                    cache=CacheTypeDefault(DefaultCache(entry_capacity=100)),
                )
            )
        return keyrings[branch_key_id]

    failures = 0
    for step in job["steps"]:
        op = step["op"]
        result = {"op": op}
        try:
            if op == "create_table":
                store.create_key_store(input=CreateKeyStoreInput())
            elif op == "create_key":
                out = store.create_key(
                    input=CreateKeyInput(
                        branch_key_identifier=step.get("branch_key_id"),
                        encryption_context=step.get("context") or None,
                    )
                )
                result["branch_key_id"] = out.branch_key_identifier
            elif op == "version_key":
                store.version_key(input=VersionKeyInput(branch_key_identifier=step["branch_key_id"]))
            elif op == "encrypt":
                algorithm = Algorithm.get_by_id(step["suite"])
                sdk = client if algorithm.is_committing() else legacy
                ciphertext, _ = sdk.encrypt(
                    source=open(step["plaintext"], "rb").read(),
                    keyring=keyring(step["branch_key_id"]),
                    encryption_context=step["context"],
                    algorithm=algorithm,
                )
                open(step["ciphertext"], "wb").write(ciphertext)
            elif op == "decrypt":
                plaintext, header = client.decrypt(
                    source=open(step["ciphertext"], "rb").read(),
                    keyring=keyring(step["branch_key_id"]),
                    encryption_context=step["context"],
                )
                result["ok"] = plaintext == open(step["plaintext"], "rb").read()
                failures += not result["ok"]
            elif op == "static_items":
                static_items(ddb, kms, job, step)
            else:
                raise ValueError(f"unknown op {op}")
        except Exception as e:  # every failure is reported and counted
            result["error"] = repr(e)
            failures += 1
        print(json.dumps(result), flush=True)
    sys.exit(1 if failures else 0)


def static_items(ddb, kms, job, step):
    """A branch key whose bytes are known, in the official schema."""
    key = base64.b64decode(step["key_b64"])
    base = {
        "branch-key-id": step["branch_key_id"],
        "create-time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "hierarchy-version": "1",
        "kms-arn": job["kms_arn"],
    }
    version = {**base, "type": "branch:version:" + step["version"]}
    active = {**base, "type": "branch:ACTIVE", "version": "branch:version:" + step["version"]}
    for attrs in (version, active):
        context = {**attrs, "tablename": job["logical_name"]}
        enc = kms.encrypt(KeyId=job["kms_arn"], Plaintext=key, EncryptionContext=context)["CiphertextBlob"]
        item = {k: ({"N": v} if k == "hierarchy-version" else {"S": v}) for k, v in attrs.items()}
        item["enc"] = {"B": enc}
        ddb.put_item(TableName=job["table"], Item=item)


if __name__ == "__main__":
    main()
