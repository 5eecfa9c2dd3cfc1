#!/usr/bin/env bash
# Sets everything up and runs Circuito on its embedded LMDB default: installs what is missing, builds the release
# binary, builds the demo Turin circuit into ./data when no ledger is there or its demo did not finish (its actors'
# keys in ./data/keys, the personal-data key vault in ./data/vault), audits it, then serves it on 127.0.0.1:7411 and
# ./data/circuito.sock.
# The demo's simulated year ends today (CIRCUITO_DEMO_FIRST_DAY sets its first day), so the ToCoin lots of its last
# months are still spendable when the server starts.
# Extra arguments go to `circuito serve` (e.g. --listen 127.0.0.1:7500).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-dependencies.sh
swift build -c release --product circuito
circuito="$(swift build -c release --show-bin-path)/circuito"
data="${CIRCUITO_DATA:-data}"
# A demo stopped half-way (Ctrl-C) leaves demo.partial beside a shorter ledger: the demo then starts over.
if [ ! -f "$data/data.mdb" ] || [ -f "$data/demo.partial" ]; then
  mkdir -p "$(dirname "$data")"
  first_day="${CIRCUITO_DEMO_FIRST_DAY:-$(date -u -d '365 days ago' +%F)}"
  echo "building the demo circuit in $data (seed ${CIRCUITO_DEMO_SEED:-1}, from $first_day); checkpoint verifier key:"
  "$circuito" demo --data "$data" --seed "${CIRCUITO_DEMO_SEED:-1}" --first-day "$first_day"
fi
"$circuito" verify --data "$data"
exec "$circuito" serve --data "$data" --unix "$data/circuito.sock" "$@"
