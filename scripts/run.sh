#!/usr/bin/env bash
# Sets everything up and runs Circuito on its embedded LMDB default: installs what is missing, builds the release
# binary, creates a ledger in ./data (authority key in ./data-keys) when there is none, audits it, then serves it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-dependencies.sh
swift build -c release --product circuito
circuito="$(swift build -c release --show-bin-path)/circuito"
data="${CIRCUITO_DATA:-data}"
keys="${CIRCUITO_KEYS:-data-keys}"
if [ ! -f "$data/data.mdb" ]; then
  mkdir -p "$keys" && chmod 700 "$keys"
  [ -f "$keys/authority.key" ] || "$circuito" keygen --out "$keys/authority.key" >/dev/null
  echo "creating a ledger in $data; checkpoint verifier key:"
  "$circuito" init --data "$data" --authority-key "$keys/authority.key" --authority-id pis-torino
fi
"$circuito" verify --data "$data"
echo "latest checkpoint:"
"$circuito" checkpoint --data "$data"
if "$circuito" help serve >/dev/null 2>&1; then
  exec "$circuito" serve --data "$data" "$@"
fi
echo "the socket server (circuito serve) is not part of this build yet; the ledger in $data is ready for the CLI."
