#!/usr/bin/env bash
# The scenarios of the README's "Performance" section, each run REPEAT times (the figures quoted are medians), with the JSON of
# every run kept in OUT. Each run stops by itself (`circuito bench --timeout`); the whole script takes 20 to 60 minutes
# on a 2-core machine, most of it the 1M-event ledger (SKIP_MILLION=1 leaves it out).
#
# Usage: bash Benchmarks/run-scenarios.sh [OUT]   (default OUT: /tmp/circuito-scenarios)
# Environment: CIRCUITO (binary; default the release build in .build-bench-release, built when missing),
#              EVENTS (events per throughput run, 30000), REPEAT (3), SKIP_MILLION, SKIP_CEILING, SKIP_POSTGRES.
set -euo pipefail

usage() { echo "usage: bash Benchmarks/run-scenarios.sh [OUT]   (default OUT: /tmp/circuito-scenarios)"; }
source "$(dirname "${BASH_SOURCE[0]}")/script-arguments.sh"
case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    -*) fail "unknown option '$1'" ;;
esac
[ $# -le 1 ] || fail "one results folder at most, not $#"

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/circuito-scenarios}"
events="${EVENTS:-30000}"
repeat="${REPEAT:-3}"
# The bounds of `circuito bench --events`; more rounds than 99 would take days.
whole_number EVENTS "$events" 1 10000000
whole_number REPEAT "$repeat" 1 99
events=$((10#$events))
repeat=$((10#$repeat))
if [ -e "$out" ] && [ ! -d "$out" ]; then fail "$out is there and is not a folder"; fi
circuito="${CIRCUITO:-$root/.build-bench-release/release/circuito}"

# The summary at the end is a Python script: installed now if missing (Debian), not found missing after the runs.
if ! command -v python3 > /dev/null; then bash "$root/scripts/ensure-dependencies.sh" python3; fi
if [ ! -x "$circuito" ]; then
    (cd "$root" && swift build -c release --scratch-path "$root/.build-bench-release" --product circuito)
fi
mkdir -p -- "$out"

# The ledgers a run makes are removed however it ends (an interrupted run would leave the tmpfs one in memory).
ceiling=""
cleanup() {
    if [ -n "$ceiling" ]; then rm -rf "$ceiling"; fi
    rm -rf "$out/ceiling-disk-ledger" "$out/base-10k" "$out/base-1m"
    rm -f "$out"/events-64x4.*.jsonl
}
trap cleanup EXIT

# run NAME ARGS…: `circuito bench ARGS… --seed N` for N = 1…REPEAT, kept as OUT/NAME.N.json;
# ROUND=N run NAME ARGS…: only round N.
run() {
    local name="$1"; shift
    local first=1 last="$repeat" round
    if [ -n "${ROUND:-}" ]; then first="$ROUND"; last="$ROUND"; fi
    for round in $(seq "$first" "$last"); do
        echo "== $name ($round/$repeat): circuito bench $*" >&2
        "$circuito" bench "$@" --seed "$round" --json > "$out/$name.$round.json" 2> "$out/$name.$round.log" || {
            echo "   failed: see $out/$name.$round.log" >&2
        }
    done
}

# Maximum throughput: 16, 32 and 64 connections, one request in flight each; 64 connections × 4 pipelined.
run throughput-16 --events "$events" --connections 16
run throughput-32 --events "$events" --connections 32
run throughput-64 --events "$events" --connections 64
# Each round at 64 × 4 also writes the events it sends (synced before it measures anything), and the PostgreSQL
# peer's round of the same number inserts exactly those: the two are compared over the same bytes.
for round in $(seq 1 "$repeat"); do
    ROUND="$round" run throughput-64x4 --events "$events" --connections 64 --pipeline 4 \
        --export-events "$out/events-64x4.$round.jsonl"
done
# The same load with up to 16 events per request (submit_batch): what batching spreads of the request path's cost.
run throughput-64x4-batch16 --events "$events" --connections 64 --pipeline 4 --batch 16
# One client's latency: appends, then balance queries (signed, then in a read session) and inclusion proofs one at a time.
run latency-1 --events 3000 --connections 1
run reads-1 --events 2000 --connections 1 --balance-queries 5000 --proofs 5000
# Reads at a small ledger: balance queries and inclusion proofs; and verify/rebuild rates.
run reads-10k --events 10000 --connections 32 --balance-queries 20000 --proofs 20000 --audit

if [ -z "${SKIP_MILLION:-}" ]; then
    # 10k against 1M records: two base ledgers of the same mix, then the same runs from a copy of each (`--base`:
    # a fresh circuit of the same size on top of the copied records), so that only the ledger's size differs. The
    # base of 1M also gives the memory of a server that appended 1M events itself.
    rm -rf "$out/base-10k" "$out/base-1m"
    ROUND=1 run base-10k --prefill 9000 --events 500 --data "$out/base-10k"
    ROUND=1 run base-1m --prefill 1000000 --events 1000 --connections 32 --data "$out/base-1m" --timeout 7200
    # Alternated, so that both sizes share the host's noise: saturation (64×4), then one request in flight per
    # connection with balance queries and inclusion proofs after the appends.
    for round in $(seq 1 "$repeat"); do
        for size in 10k 1m; do
            ROUND="$round" run "from-$size-64x4" --base "$out/base-$size" --events "$events" --connections 64 --pipeline 4
            ROUND="$round" run "from-$size-32" --base "$out/base-$size" --events "$events" --connections 32 \
                --balance-queries 20000 --proofs 20000
            # One client's reads at each size (the 32 connections above measure the queue as much as the read).
            ROUND="$round" run "from-$size-reads-1" --base "$out/base-$size" --events 200 --connections 1 \
                --balance-queries 5000 --proofs 5000
        done
    done
    # Saturation and one client's reads at 1M once more, with the copy left out of the page cache (`--cold-base`), as
    # on a server just restarted: the runs above read each copy in first, as a server that has been running finds it.
    ROUND=1 run from-1m-64x4-cold --base "$out/base-1m" --cold-base --events "$events" --connections 64 --pipeline 4
    ROUND=1 run from-1m-reads-1-cold --base "$out/base-1m" --cold-base --events 200 --connections 1 \
        --balance-queries 5000 --proofs 5000
    # verify and rebuild over the 1M ledger.
    ROUND=1 run audit-1m --base "$out/base-1m" --events 1000 --connections 32 --audit --timeout 7200
    rm -rf "$out/base-10k" "$out/base-1m"
fi

# The ceiling without the disk: the same appends with the ledger on a memory file system (tmpfs), alternated with the
# disk, so the difference is what the durable commits cost. Never a way to run a ledger: a reboot loses it.
if [ -z "${SKIP_CEILING:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    ceiling="/dev/shm/circuito-ceiling-$$"
    disk="$out/ceiling-disk-ledger"
    for round in $(seq 1 "$repeat"); do
        for load in "64x4:--connections 64 --pipeline 4 --events $events" "32:--connections 32 --events $events" \
            "1:--connections 1 --events 3000"; do
            name="${load%%:*}"
            read -r -a arguments <<< "${load#*:}"
            rm -rf "$ceiling" "$disk"
            ROUND="$round" run "ceiling-tmpfs-$name" "${arguments[@]}" --data "$ceiling"
            rm -rf "$ceiling"
            ROUND="$round" run "ceiling-disk-$name" "${arguments[@]}" --data "$disk"
            rm -rf "$disk"
        done
    done
fi

if [ -z "${SKIP_POSTGRES:-}" ]; then
    for round in $(seq 1 "$repeat"); do
        echo "== postgres ($round/$repeat)" >&2
        # The events that round's run at 64 × 4 sent to the ledger; if it wrote none (it failed before), the peer
        # exports events of the same mix itself, and this script's output says so.
        events_file="$out/events-64x4.$round.jsonl"
        if [ ! -s "$events_file" ]; then
            echo "   throughput-64x4 round $round wrote no events: the peer exports its own" >&2
            events_file=""
        fi
        # As any other run: a failure (PostgreSQL not installable here, say) is reported, and the summary follows.
        CIRCUITO="$circuito" EVENTS_FILE="$events_file" bash "$root/Benchmarks/postgres-peer.sh" --events "$events" --json \
            > "$out/postgres.$round.json" 2> "$out/postgres.$round.log" || echo "   failed: see $out/postgres.$round.log" >&2
        rm -f "$out/events-64x4.$round.jsonl"
    done
fi

# Medians of the main figures, and each target met or missed (also in OUT/targets.json).
python3 "$root/Benchmarks/summarise-scenarios.py" "$out"
