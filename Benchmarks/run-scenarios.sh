#!/usr/bin/env bash
# The scenarios of the README's "Performance" section, each run REPEAT times (the figures quoted are medians), with the JSON of
# every run kept in OUT. Each run stops by itself (`circuito bench --timeout`); the whole script takes 20 to 60 minutes
# on a 2-core machine, most of it the 1M-event ledger (SKIP_MILLION=1 leaves it out).
#
# Usage: bash Benchmarks/run-scenarios.sh [OUT]   (default OUT: /tmp/circuito-scenarios)
# Environment: CIRCUITO (binary; default the release build in .build-bench-release, built when missing),
#              EVENTS (events per throughput run, 30000), REPEAT (3), SKIP_MILLION, SKIP_CEILING, SKIP_POSTGRES.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-/tmp/circuito-scenarios}"
events="${EVENTS:-30000}"
repeat="${REPEAT:-3}"
circuito="${CIRCUITO:-$root/.build-bench-release/release/circuito}"
if [ ! -x "$circuito" ]; then
    (cd "$root" && swift build -c release --scratch-path "$root/.build-bench-release" --product circuito)
fi
mkdir -p "$out"

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
run throughput-64x4 --events "$events" --connections 64 --pipeline 4
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
        CIRCUITO="$circuito" bash "$root/Benchmarks/postgres-peer.sh" --events "$events" --json > "$out/postgres.$round.json"
    done
fi

# Medians of the main figures.
python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
groups = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(path).rsplit(".", 2)[0]
    try:
        groups.setdefault(name, []).append(json.load(open(path)))
    except ValueError:
        pass
keys = ["throughput_events_per_second", "verify_bound_events_per_second", "ratio_to_bound", "cpu_ratio_to_bound",
        "latency_p50_ms", "latency_p99_ms", "server_rss_mb", "server_anonymous_rss_mb", "balance_queries_per_second",
        "balance_latency_p50_ms", "balance_latency_p99_ms", "session_balance_queries_per_second", "session_balance_latency_p50_ms",
        "session_balance_latency_p99_ms", "proofs_per_second", "proof_latency_p50_ms", "proof_latency_p99_ms", "verify_events_per_second",
        "rebuild_events_per_second", "rebuild_trusting_checkpoints_events_per_second", "best_events_per_second", "refused",
        "writer_events_per_commit", "writer_commit_ms_mean", "writer_busy_share", "writer_commit_share", "writer_planning_share",
        "disk_random_page_sync_us", "disk_contiguous_page_sync_us", "server_cpu_us_per_event", "server_context_switches_per_event",
        "host_steal_share", "verify_bound_host_steal_share", "audit_host_steal_share", "server_cpu_share_committer",
        "server_cpu_share_planner", "server_cpu_share_request_threads", "server_cpu_share_event_loops", "server_cpu_share_other"]
for name, runs in groups.items():
    figures = []
    for key in keys:
        values = [run[key] for run in runs if isinstance(run.get(key), (int, float))]
        if values:
            figures.append(f"{key}={statistics.median(values):g}")
    print(f"{name} ({len(runs)} runs): " + ", ".join(figures))
# The same runs from 1M records against 10k: the ratio of the median throughputs.
def median_of(name, key):
    values = [run[key] for run in groups.get(name, []) if isinstance(run.get(key), (int, float))]
    return statistics.median(values) if values else None
for configuration in ["64x4", "32"]:
    small = median_of(f"from-10k-{configuration}", "throughput_events_per_second")
    large = median_of(f"from-1m-{configuration}", "throughput_events_per_second")
    if small and large:
        print(f"append at 1M against 10k ({configuration}): {large:g} / {small:g} = {large / small:.3f}")
# The appends on tmpfs against the same appends on the disk.
for load in ["64x4", "32", "1"]:
    memory = median_of(f"ceiling-tmpfs-{load}", "throughput_events_per_second")
    disk = median_of(f"ceiling-disk-{load}", "throughput_events_per_second")
    if memory and disk:
        print(f"append on tmpfs against the disk ({load}): {memory:g} / {disk:g} = {memory / disk:.3f}")
PY
