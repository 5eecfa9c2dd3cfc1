#!/usr/bin/env bash
# The scenarios of the README's "Performance" section, each run REPEAT times (the figures quoted are medians), with the JSON of
# every run kept in OUT. Each run stops by itself (`circuito bench --timeout`); the whole script takes 20 to 60 minutes
# on a 2-core machine, most of it the 1M-event ledger (SKIP_MILLION=1 leaves it out).
#
# Usage: bash Benchmarks/run-scenarios.sh [OUT]   (default OUT: /tmp/circuito-scenarios; new or empty)
# Environment: CIRCUITO (binary, used as it is; without it the release build in .build-bench-release, built when
#              missing), EVENTS (events per throughput run, 30000), REPEAT (3), SKIP_MILLION, SKIP_CEILING, SKIP_POSTGRES.
# A round whose bench fails (an event refused or left unsent at its deadline, a connection failed, or no run at all)
# is kept as NAME.N.failed.json and .log, which the summary does not count; the runs on a base ledger whose own run
# failed are not made. Exits 2 on a bad argument (nothing built or written), 128 + the signal's number when stopped
# by SIGTERM or SIGINT (the running bench stopped first), and otherwise with the summary's exit status (0 when every
# round counted, 3 when a round was set aside or a target not measured: Benchmarks/summarise-scenarios.py).
set -euo pipefail

usage() { echo "usage: bash Benchmarks/run-scenarios.sh [OUT]   (default OUT: /tmp/circuito-scenarios; a new or empty folder)"; }
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
# The summary reads every result in OUT, so an earlier run's would be mixed into this one's medians; and the cleanup
# removes ledgers there by name. Nothing of the user's is deleted: another folder is asked for.
if [ -d "$out" ] && [ -n "$(ls -A -- "$out")" ]; then
    fail "$out is not empty: an earlier run's results there would be mixed into this run's summary; give a new or empty folder"
fi
# A binary given is used as it is: a build could not make it appear at that path.
if [ -n "${CIRCUITO:-}" ]; then
    if [ ! -f "$CIRCUITO" ] || [ ! -x "$CIRCUITO" ]; then fail "CIRCUITO '$CIRCUITO' is not an executable file"; fi
    circuito="$CIRCUITO"
else
    circuito="$root/.build-bench-release/release/circuito"
fi

# The summary at the end is a Python script: installed now if missing (Debian), not found missing after the runs.
if ! command -v python3 > /dev/null; then bash "$root/scripts/ensure-dependencies.sh" python3; fi
if [ ! -x "$circuito" ]; then
    (cd "$root" && swift build -c release --scratch-path "$root/.build-bench-release" --product circuito)
fi
mkdir -p -- "$out"
# The bench puts the ledgers it makes under $TMPDIR: on a memory file system no commit is durable, and the summary
# counts none of those runs. Said now, not after the hour the runs take.
scratch="${TMPDIR:-/tmp}"
if [ "$(stat -f -c %T -- "$scratch" 2> /dev/null || true)" = tmpfs ]; then
    echo "warning: $scratch (\$TMPDIR) is on tmpfs: the runs' ledgers would be in memory, and the summary will count none of them; set TMPDIR to a folder on a disk" >&2
fi

# The ledgers a run makes are removed however it ends (an interrupted run would leave the tmpfs one in memory).
ceiling=""
cleanup() {
    if [ -n "$ceiling" ]; then rm -rf "$ceiling"; fi
    rm -rf "$out/ceiling-disk-ledger" "$out/base-10k" "$out/base-1m"
    rm -f "$out"/events-64x4.*.jsonl
}
trap cleanup EXIT

# The bench (or the PostgreSQL peer) runs in the background, waited for, so that a signal reaches this script at once
# and the child can be stopped before the cleanup removes a ledger under it or anything more is written to OUT.
child=""
current=""
stop() {
    # A second signal does not wait: the child is killed outright.
    trap 'if [ -n "$child" ]; then kill -KILL "$child" 2> /dev/null || true; fi' TERM INT
    echo "stopped by SIG$1" >&2
    if [ -n "$child" ]; then
        kill -TERM "$child" 2> /dev/null || true
        while kill -0 "$child" 2> /dev/null; do wait "$child" 2> /dev/null || true; done
    fi
    if [ -n "$current" ]; then set_aside "$current" "interrupted"; fi
    exit $((128 + $2))
}
trap 'stop TERM 15' TERM
trap 'stop INT 2' INT

# start OUTPUT LOG COMMAND…: runs COMMAND… (stdout to OUTPUT, stderr to LOG) as the child `stop` stops, and returns its
# exit status. The redirections are the child's own: on the function call they would also take this script's
# messages while it waits.
start() {
    local output="$1" log="$2" status=0
    shift 2
    "$@" > "$output" 2> "$log" &
    child=$!
    wait "$child" || status=$?
    child=""
    return "$status"
}

# set_aside OUT/NAME.N WHY: that round's output renamed NAME.N.failed.json and .log, which the summary does not count.
set_aside() {
    if [ -e "$1.json" ]; then mv -f -- "$1.json" "$1.failed.json"; fi
    if [ -e "$1.log" ]; then mv -f -- "$1.log" "$1.failed.log"; fi
    echo "   $2: not counted; kept as $1.failed.json, see $1.failed.log" >&2
}

# run NAME ARGS…: `circuito bench ARGS… --seed N` for N = 1…REPEAT, kept as OUT/NAME.N.json (stderr in NAME.N.log);
# ROUND=N run NAME ARGS…: only round N. A round whose bench exits non-zero (the bench's JSON then says why: refusals,
# events unsent at its deadline, connections that failed) is set aside. Sets run_failed to 1 when a round failed, to 0
# otherwise (not a return status: under `set -e` every call would need its own `|| true`).
run_failed=0
run() {
    local name="$1"; shift
    local first=1 last="$repeat" round status
    run_failed=0
    if [ -n "${ROUND:-}" ]; then first="$ROUND"; last="$ROUND"; fi
    for round in $(seq "$first" "$last"); do
        echo "== $name ($round/$repeat): circuito bench $*" >&2
        current="$out/$name.$round"
        status=0
        start "$current.json" "$current.log" "$circuito" bench "$@" --seed "$round" --json || status=$?
        if [ "$status" -ne 0 ]; then
            set_aside "$current" "failed (exit status $status)"
            run_failed=1
        fi
        current=""
    done
}

# Maximum throughput: 16, 32 and 64 connections, one request in flight each; 64 connections × 4 pipelined.
run throughput-16 --events "$events" --connections 16
run throughput-32 --events "$events" --connections 32
run throughput-64 --events "$events" --connections 64
# Each client inserts at least one event: with fewer EVENTS than a count, that count is left out.
postgres_clients=""
for count in 1 8 32 64 256; do
    if [ "$count" -le "$events" ]; then postgres_clients="$postgres_clients${postgres_clients:+ }$count"; fi
done
# postgres_round N: the PostgreSQL peer's round N, over the events round N at 64 × 4 sent to the ledger, with 1, 8
# and 32 clients (the issue's) and 64 and 256 (the connections and the requests in flight of the ledger's run at 64 ×
# 4, so that its best is not held below the ledger's concurrency).
postgres_round() {
    local round="$1" events_file status
    echo "== postgres ($round/$repeat)" >&2
    # The events that round's run at 64 × 4 sent to the ledger; if it wrote none (it failed before), the peer
    # exports events of the same mix itself, and this script's output says so.
    events_file="$out/events-64x4.$round.jsonl"
    if [ ! -s "$events_file" ]; then
        echo "   throughput-64x4 round $round wrote no events: the peer exports its own" >&2
        events_file=""
    fi
    # As any other run: a failure (PostgreSQL not installable here, say) is set aside, and the summary follows.
    current="$out/postgres.$round"
    status=0
    start "$current.json" "$current.log" env CIRCUITO="$circuito" EVENTS_FILE="$events_file" \
        bash "$root/Benchmarks/postgres-peer.sh" --events "$events" --clients "$postgres_clients" --json || status=$?
    if [ "$status" -ne 0 ]; then set_aside "$current" "failed (exit status $status)"; fi
    current=""
    rm -f "$out/events-64x4.$round.jsonl"
}

# Each round at 64 × 4 also writes the events it sends (synced before it measures anything), and the PostgreSQL
# peer's round of the same number inserts exactly those, right after it: the two are compared over the same bytes
# and at the same moment of the host.
for round in $(seq 1 "$repeat"); do
    ROUND="$round" run throughput-64x4 --events "$events" --connections 64 --pipeline 4 \
        --export-events "$out/events-64x4.$round.jsonl"
    if [ -z "${SKIP_POSTGRES:-}" ]; then postgres_round "$round"; fi
    rm -f "$out/events-64x4.$round.jsonl"
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
    # A base whose run failed (stopped by its --timeout, say) is a partial ledger: removed, and the runs from it are
    # not made (they would measure another size).
    sizes=""
    use_base() {
        if [ "$run_failed" -eq 0 ]; then sizes="$sizes $1"; return; fi
        rm -rf -- "$out/base-$1"
        local names="from-$1-64x4, from-$1-32, from-$1-reads-1"
        if [ "$1" = 1m ]; then names="$names, from-1m-64x4-cold, from-1m-reads-1-cold, audit-1m"; fi
        echo "   not run: $names: base-$1 failed (see $out/base-$1.1.failed.log), its partial ledger removed" >&2
    }
    ROUND=1 run base-10k --prefill 9000 --events 500 --data "$out/base-10k"
    use_base 10k
    ROUND=1 run base-1m --prefill 1000000 --events 1000 --connections 32 --data "$out/base-1m" --timeout 7200
    use_base 1m
    # Alternated, so that both sizes share the host's noise: saturation (64×4), then one request in flight per
    # connection with balance queries and inclusion proofs after the appends.
    for round in $(seq 1 "$repeat"); do
        for size in $sizes; do
            ROUND="$round" run "from-$size-64x4" --base "$out/base-$size" --events "$events" --connections 64 --pipeline 4
            ROUND="$round" run "from-$size-32" --base "$out/base-$size" --events "$events" --connections 32 \
                --balance-queries 20000 --proofs 20000
            # One client's reads at each size (the 32 connections above measure the queue as much as the read).
            ROUND="$round" run "from-$size-reads-1" --base "$out/base-$size" --events 200 --connections 1 \
                --balance-queries 5000 --proofs 5000
        done
    done
    if [[ " $sizes " == *" 1m "* ]]; then
        # Saturation and one client's reads at 1M once more, with the copy left out of the page cache (`--cold-base`),
        # as on a server just restarted: the runs above read each copy in first, as a server that has been running
        # finds it.
        ROUND=1 run from-1m-64x4-cold --base "$out/base-1m" --cold-base --events "$events" --connections 64 --pipeline 4
        ROUND=1 run from-1m-reads-1-cold --base "$out/base-1m" --cold-base --events 200 --connections 1 \
            --balance-queries 5000 --proofs 5000
        # verify and rebuild over the 1M ledger.
        ROUND=1 run audit-1m --base "$out/base-1m" --events 1000 --connections 32 --audit --timeout 7200
    fi
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

# Medians of the main figures, and each target met or missed (also in OUT/targets.json).
python3 "$root/Benchmarks/summarise-scenarios.py" "$out"
