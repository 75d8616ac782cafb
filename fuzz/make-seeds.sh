#!/usr/bin/env bash
# Seeds the decrypt fuzzer with the official raw-AES vectors' ciphertexts.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p seeds
for f in ../../shared/vectors/esdk/*/ciphertexts/*; do cp "$f" "seeds/$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f")"; done
echo "seeds: $(ls seeds | wc -l)"
