#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine with
# Rust and Python: SoftHSM2 (the HSM in tests), curl, and Python virtual
# environments for the KMS emulators and the official Python ESDK.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need_apt+=(softhsm2)
command -v pkcs11-tool >/dev/null || need_apt+=(opensc)
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# The official Python peers, one virtual environment each, since their pins
# conflict: .venv holds moto (KMS + DynamoDB emulator), the ESDK 4.x and the
# Material Providers Library (keyrings, the hierarchical keyring);
# .venv-esdk3 the ESDK 3.x line; .venv-cli aws-encryption-cli 4.3.0, which
# pins ESDK 3.x.
if [ ! -x .venv/bin/moto_server ] || ! .venv/bin/python -c 'import aws_encryption_sdk, aws_cryptographic_material_providers' 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check 'moto[server]' flask flask-cors 'aws-encryption-sdk>=4,<5' 'aws-cryptographic-material-providers>=1.11,<2'
fi
if [ ! -x .venv-esdk3/bin/python ] || ! .venv-esdk3/bin/python -c 'import aws_encryption_sdk' 2>/dev/null; then
  python3 -m venv .venv-esdk3
  .venv-esdk3/bin/pip install -q --disable-pip-version-check 'aws-encryption-sdk>=3,<4'
fi
if [ ! -x .venv-cli/bin/aws-encryption-cli ]; then
  python3 -m venv .venv-cli
  .venv-cli/bin/pip install -q --disable-pip-version-check 'aws-encryption-sdk-cli==4.3.0'
fi

# localstack-core enforces key state and multi-region decrypt; it needs
# Python 3.13 (shipped through pyenv on these machines).
PY313="${PY313:-$HOME/.pyenv/versions/3.13.0/bin/python}"
if [ ! -x .venv-ls/bin/python ] || ! .venv-ls/bin/python -c 'import localstack' 2>/dev/null; then
  if [ -x "$PY313" ]; then
    "$PY313" -m venv .venv-ls
    .venv-ls/bin/pip install -q --disable-pip-version-check 'localstack-core[base-runtime]' 'cbor2<6' 'pyopenssl<24.3' 'cryptography<44' service_identity
  else
    echo "install-test-deps: Python 3.13 not found at $PY313; localstack-based tests will fail" >&2
  fi
fi
