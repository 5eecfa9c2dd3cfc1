#!/usr/bin/env python3
"""Summarises a folder of `Benchmarks/run-scenarios.sh` results: the medians of the main figures per scenario, the
1 M against 10 k and tmpfs against disk comparisons, and each target of the README's "Performance" section as met or
missed, measured against its own run (the ratios use each run's own bound; 1 M against 10 k and the ledger against
PostgreSQL are the median of each round against its partner of the same number, run beside it). The targets also go
to OUT/targets.json.

Only the runs that appended the whole mix and answered every read they asked count: a result whose `complete` is
false (an event or a read refused or unsent at the deadline, a connection failed) or, in a result from before
`complete` covered the reads, whose `refused`, `balance_refused`, `session_balance_refused` or `proof_refused` is above
0 is left out, as are a failed round's NAME.N.failed.json (kept by run-scenarios.sh) and files that are not a run's
JSON; each is named, with why, before the targets. Each target says how many rounds its median is over.

Usage: python3 Benchmarks/summarise-scenarios.py OUT
Exits 2, writing nothing, when OUT is not a folder or holds no readable results; 1, the summary printed all the same,
when OUT/targets.json cannot be written; 3, the summary printed and written, when it does not rest on every round the
script made: a result was left out, a target was not measured, or `verify` and `rebuild` were taken from the 10 k
ledger because the 1 M audit is missing.
"""
import glob
import json
import math
import os
import statistics
import sys

MEDIAN_KEYS = [
    "throughput_events_per_second", "throughput_all_connections_busy_events_per_second", "all_connections_busy_share",
    "verify_bound_events_per_second", "ratio_to_bound", "cpu_ratio_to_bound",
    "latency_p50_ms", "latency_p99_ms", "server_rss_mb", "server_anonymous_rss_mb", "balance_queries_per_second",
    "balance_latency_p50_ms", "balance_latency_p99_ms", "session_balance_queries_per_second",
    "session_balance_latency_p50_ms", "session_balance_latency_p99_ms", "proofs_per_second", "proof_latency_p50_ms",
    "proof_latency_p99_ms", "verify_events_per_second", "rebuild_events_per_second",
    "rebuild_trusting_checkpoints_events_per_second", "best_events_per_second", "refused", "writer_events_per_commit",
    "writer_commit_ms_mean", "writer_busy_share", "writer_commit_share", "writer_planning_share",
    "disk_random_page_sync_us", "disk_contiguous_page_sync_us", "server_cpu_us_per_event",
    "server_context_switches_per_event", "host_steal_share", "verify_bound_host_steal_share", "audit_host_steal_share",
    "server_cpu_share_committer", "server_cpu_share_planner", "server_cpu_share_request_threads",
    "server_cpu_share_event_loops", "server_cpu_share_dispatch_workers", "server_cpu_share_other", "server_system_cpu_share",
    "disk_write_kb_per_event", "disk_write_requests_per_event", "loopback_round_trip_p50_us", "loopback_round_trip_p99_us",
    "base_copy_mb", "base_copy_read_seconds", "base_copy_cached_share_at_start",
]


def is_figure(value):
    """A number the summary can compute with: not a boolean, and within a float's range (a made-up 400-digit integer
    is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def number(value):
    """A figure as the summary prints it: %g, or every digit of an integer too large for a float."""
    try:
        return f"{value:g}"
    except OverflowError:
        return str(value)


def above_zero(run, key):
    value = run.get(key)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


READ_PHASES = [("balance", "balance queries"), ("session_balance", "balance queries in read sessions"), ("proof", "inclusion proofs")]


# File systems that keep nothing across a reboot: a commit there is not durable.
MEMORY_FILE_SYSTEMS = ("tmpfs", "ramfs")


def why_not_counted(run, scenario):
    """Why a run's figures do not count (they describe another load than the one asked for), or None when they do."""
    # Only the ceiling's own rounds may put a ledger in memory: anywhere else a "durable append" would measure none.
    if run.get("ledger_file_system") in MEMORY_FILE_SYSTEMS and not scenario.startswith("ceiling-tmpfs-"):
        return f"its ledger was on {run['ledger_file_system']}, in memory: no commit was durable"
    reasons = []
    if above_zero(run, "refused"):
        reasons.append(f"{number(run['refused'])} events refused")
    if run.get("stopped_by_deadline") is True:
        reasons.append("stopped by its deadline")
    if above_zero(run, "connections_failed"):
        reasons.append(f"{number(run['connections_failed'])} connections failed")
    # The read phases: a refused read (`overloaded`, say) is answered faster than a read, and a phase cut short
    # measured fewer reads than asked.
    for prefix, words in READ_PHASES:
        if above_zero(run, f"{prefix}_refused"):
            reasons.append(f"{number(run[f'{prefix}_refused'])} {words} refused")
        if run.get(f"{prefix}_stopped_by_deadline") is True:
            reasons.append(f"{words} stopped by the deadline")
        if above_zero(run, f"{prefix}_connections_failed"):
            reasons.append(f"{number(run[f'{prefix}_connections_failed'])} connections of the {words} failed")
    if run.get("complete") is False:
        return "incomplete: not every event appended or read answered" + (f" ({'; '.join(reasons)})" if reasons else "")
    # A result from before `complete` covered the reads: its refusals are all it tells.
    return "; ".join(reasons) if reasons else None


def load(out):
    """Scenario name → the JSON of each of its counted runs (files NAME.N.json); scenario name → round number N →
    that run; and (file name, why) of each file left out: a failed round's, one that is not a run's JSON object, a run
    that did not append the whole mix."""
    groups = {}
    numbered = {}
    skipped = []
    for path in sorted(glob.glob(os.path.join(out, "*.json"))):
        base = os.path.basename(path)
        if base == "targets.json":
            continue
        if not os.path.isfile(path):
            skipped.append((base, "not a file"))
            continue
        text = None
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
            run = json.loads(text)
        except (ValueError, RecursionError) as error:  # also text that is not UTF-8, or nested past Python's stack
            empty = text is not None and not text.strip()
            run, why = None, "unreadable: empty" if empty else f"unreadable: not JSON ({error})"
        except OSError as error:
            run, why = None, f"unreadable: {error.strerror or error}"
        else:
            # A run's figures are one JSON object; anything else is not a run's output.
            why = why_not_counted(run, base.rsplit(".", 2)[0]) if isinstance(run, dict) else "not a run's result (JSON, but not an object)"
        if base.endswith(".failed.json"):
            # Its bench exited non-zero; its own figures may say why.
            reason = f": {why}" if isinstance(run, dict) and why else ""
            why = f"a failed round's output (set aside by run-scenarios.sh){reason}"
        if why is not None:
            skipped.append((base, why))
            continue
        parts = base.rsplit(".", 2)
        groups.setdefault(parts[0], []).append(run)
        if len(parts) == 3 and parts[1].isdigit():
            numbered.setdefault(parts[0], {})[int(parts[1])] = run
    return groups, numbered, skipped


def rounds(groups, name, key):
    """How many counted runs of `name` give `key`."""
    return sum(1 for run in groups.get(name, []) if is_figure(run.get(key)))


def median(groups, name, key):
    values = [run[key] for run in groups.get(name, []) if is_figure(run.get(key))]
    return statistics.median(values) if values else None


def ratios(groups, name, numerator, denominator):
    """The median over the runs of `numerator ÷ denominator`, each run against its own figures."""
    values = [
        run[numerator] / run[denominator] for run in groups.get(name, [])
        if is_figure(run.get(numerator)) and is_figure(run.get(denominator)) and run[denominator] > 0
    ]
    return statistics.median(values) if values else None


def paired_ratios(numbered, numerator, denominator):
    """Round number → numerator ÷ denominator, each a (scenario, key), over the rounds of the same number that both
    scenarios counted: run-scenarios.sh runs them together (each PostgreSQL round right after the 64 x 4 round whose
    events it inserts; the 1 M and 10 k rounds alternated), so that each pair shares the host's moment."""
    (top_name, top_key), (bottom_name, bottom_key) = numerator, denominator
    tops, bottoms = numbered.get(top_name, {}), numbered.get(bottom_name, {})
    pairs = {}
    for number in sorted(set(tops) & set(bottoms)):
        top, bottom = tops[number].get(top_key), bottoms[number].get(bottom_key)
        if is_figure(top) and is_figure(bottom) and bottom > 0:
            pairs[number] = top / bottom
    return pairs


def floor(groups, name):
    """The same runs' loopback round trip (the floor under one client's latency), as a clause, or nothing."""
    p50 = median(groups, name, "loopback_round_trip_p50_us")
    p99 = median(groups, name, "loopback_round_trip_p99_us")
    return f" (a loopback round trip in the same runs: p50 {p50:g} us, p99 {p99:g} us)" if p50 is not None and p99 is not None else ""


def targets(groups, numbered):
    """Each target as (name, measured text, met: True, False or None when the runs behind it are missing)."""
    results = []

    def add(name, value, met, text, scenario, key, counted=None):
        results.append({
            "target": name, "value": value, "met": None if value is None else met, "measured": text if value is not None else "not measured",
            "scenario": scenario, "rounds": rounds(groups, scenario, key) if counted is None else counted,
        })

    ratio = ratios(groups, "throughput-64x4", "throughput_events_per_second", "verify_bound_events_per_second")
    add("durable append >= 70 % of the verification bound (64 x 4)", ratio, ratio is not None and ratio >= 0.70,
        f"{ratio:.1%} of its bound" if ratio is not None else "", "throughput-64x4", "throughput_events_per_second")
    # Each round at 64 x 4 against the PostgreSQL round right after it, over the same events: the median of those
    # ratios, as each run is set against its own bound above (the ratio of the two medians would set rounds of
    # different moments of the host against each other).
    append = median(groups, "throughput-64x4", "throughput_events_per_second")
    postgres = median(groups, "postgres", "best_events_per_second")
    against_postgres = paired_ratios(numbered, ("throughput-64x4", "throughput_events_per_second"), ("postgres", "best_events_per_second"))
    times = statistics.median(against_postgres.values()) if against_postgres else None
    each = ", ".join(f"{ratio:.2f}x" for ratio in against_postgres.values())
    add(">= 3x the PostgreSQL peer's best", times, times is not None and times >= 3,
        f"{times:.2f}x (the median of the rounds' {each}; medians {append:g} against {postgres:g} events/s)" if times is not None else "",
        "postgres", "best_events_per_second", len(against_postgres))
    p99 = median(groups, "latency-1", "latency_p99_ms")
    add("one client's append p99 <= 2 ms", p99, p99 is not None and p99 <= 2,
        f"{p99:g} ms{floor(groups, 'latency-1')}" if p99 is not None else "", "latency-1", "latency_p99_ms")
    audit = "audit-1m" if "audit-1m" in groups else "reads-10k"
    # Against the bound's verifications over the audited ledger's own signatures per record (its setup records have
    # one, a payment two); a result from before `verify_ratio_to_bound` gives records against the mix's events.
    if any(is_figure(run.get("verify_ratio_to_bound")) for run in groups.get(audit, [])):
        verify, verify_key = median(groups, audit, "verify_ratio_to_bound"), "verify_ratio_to_bound"
    else:
        verify, verify_key = ratios(groups, audit, "verify_events_per_second", "verify_bound_events_per_second"), "verify_events_per_second"
    add(f"verify >= 80 % of the bound ({audit})", verify, verify is not None and verify >= 0.80,
        f"{verify:.1%} of its bound" if verify is not None else "", audit, verify_key)
    rebuild = median(groups, audit, "rebuild_events_per_second")
    trusting = median(groups, audit, "rebuild_trusting_checkpoints_events_per_second")
    # A result without the rate trusting the checkpoints (an older bench's) gives the rebuild's alone.
    trusted = f" ({trusting:g} trusting the checkpoints)" if trusting is not None else ""
    add(f"rebuild >= 200 k events/s ({audit})", rebuild, rebuild is not None and rebuild >= 200_000,
        f"{rebuild:g} events/s{trusted}" if rebuild is not None else "", audit, "rebuild_events_per_second")
    signed = median(groups, "reads-1", "balance_latency_p99_ms")
    session = median(groups, "reads-1", "session_balance_latency_p99_ms")
    add("balance query p99 <= 0.3 ms (one client, signed)", signed, signed is not None and signed <= 0.3,
        f"signed {signed:g} ms, in a read session {session:g} ms{floor(groups, 'reads-1')}" if signed is not None and session is not None
        else f"signed {signed} ms", "reads-1", "balance_latency_p99_ms")
    memory = median(groups, "from-1m-64x4", "server_rss_mb")
    own = median(groups, "from-1m-64x4", "server_anonymous_rss_mb")
    cold = median(groups, "from-1m-64x4-cold", "server_rss_mb")
    # Each figure beside the target's that the runs give (an older result may lack the server's own memory).
    parts = ([f"its own memory {own:g} MB"] if own is not None else []) + ([f"{cold:g} MB started on a copy not in the page cache"] if cold is not None else [])
    beside = f" ({'; '.join(parts)})" if parts else ""
    add("server resident memory <= 150 MB with 1 M events (appending)", memory, memory is not None and memory <= 150,
        f"{memory:g} MB{beside}" if memory is not None else "", "from-1m-64x4", "server_rss_mb")
    # Each 1 M round against the 10 k round of its number (run-scenarios.sh alternates them): the median of those
    # changes, not the change between the two medians, which can come from different rounds.
    throughput = "throughput_events_per_second"
    small = median(groups, "from-10k-64x4", throughput)
    large = median(groups, "from-1m-64x4", throughput)
    at_million = paired_ratios(numbered, ("from-1m-64x4", throughput), ("from-10k-64x4", throughput))
    change = statistics.median(at_million.values()) - 1 if at_million else None
    each = ", ".join(f"{ratio - 1:+.1%}" for ratio in at_million.values())
    at_million32 = paired_ratios(numbered, ("from-1m-32", throughput), ("from-10k-32", throughput))
    also = f"; with one request in flight per connection (32 x 1) {statistics.median(at_million32.values()) - 1:+.1%}" if at_million32 else ""
    add("append throughput at 1 M within 10 % of 10 k (64 x 4)", change, change is not None and abs(change) <= 0.10,
        f"{change:+.1%} (the median of the rounds' {each}; medians {large:g} against {small:g} events/s){also}" if change is not None else "",
        "from-1m-64x4", throughput, len(at_million))
    return results, audit != "audit-1m" and audit in groups


def main():
    if len(sys.argv) == 2 and sys.argv[1] in ("-h", "--help"):
        print("usage: python3 Benchmarks/summarise-scenarios.py OUT")
        return 0
    if len(sys.argv) != 2:
        print("error: one argument, the results folder of Benchmarks/run-scenarios.sh", file=sys.stderr)
        print("usage: python3 Benchmarks/summarise-scenarios.py OUT", file=sys.stderr)
        return 2
    out = sys.argv[1]
    if not os.path.isdir(out):
        print(f"error: {out} is not a folder", file=sys.stderr)
        return 2
    groups, numbered, skipped = load(out)
    if not groups:
        # Nothing to summarise: say so, and leave no targets.json that would read as a run with nothing measured.
        print(f"error: {out} holds no readable results (NAME.N.json of Benchmarks/run-scenarios.sh)", file=sys.stderr)
        for base, why in skipped:
            print(f"skipped {base}: {why}", file=sys.stderr)
        return 2
    for name, runs in groups.items():
        figures = []
        for key in MEDIAN_KEYS:
            value = median(groups, name, key)
            if value is not None:
                figures.append(f"{key}={value:g}")
        print(f"{name} ({len(runs)} runs): " + ", ".join(figures))
    # The same runs from 1M records against 10k: the ratio of the median throughputs.
    for configuration in ["64x4", "32"]:
        small = median(groups, f"from-10k-{configuration}", "throughput_events_per_second")
        large = median(groups, f"from-1m-{configuration}", "throughput_events_per_second")
        if small and large:
            print(f"append at 1M against 10k ({configuration}): {large:g} / {small:g} = {large / small:.3f}")
    # One client's proofs at 1M with the copy read into the page cache against the copy left out of it.
    cached = median(groups, "from-1m-reads-1", "proof_latency_p50_ms")
    cold = median(groups, "from-1m-reads-1-cold", "proof_latency_p50_ms")
    if cached and cold:
        print(f"one client's proof p50 at 1M, the copy cached against left out of the page cache: {cached:g} / {cold:g} ms")
    # The appends on tmpfs against the same appends on the disk.
    for load_name in ["64x4", "32", "1"]:
        memory = median(groups, f"ceiling-tmpfs-{load_name}", "throughput_events_per_second")
        disk = median(groups, f"ceiling-disk-{load_name}", "throughput_events_per_second")
        if memory and disk:
            print(f"append on tmpfs against the disk ({load_name}): {memory:g} / {disk:g} = {memory / disk:.3f}")
    # The same load with up to 16 events per request against one event per request: each against its own bound.
    batched = ratios(groups, "throughput-64x4-batch16", "throughput_events_per_second", "verify_bound_events_per_second")
    single = ratios(groups, "throughput-64x4", "throughput_events_per_second", "verify_bound_events_per_second")
    if batched is not None and single is not None:
        print(f"append in batches of 16 against one event per request (64x4): {batched:.1%} against {single:.1%} of the bound")
    # What is left out of every figure above and below, and why.
    for base, why in skipped:
        print(f"skipped {base}: {why}")
    results, audit_fallback = targets(groups, numbered)
    print("targets (medians of the runs):")
    for result in results:
        if result["met"] is None:
            print(f"  {result['target']}: not measured")
        else:
            print(f"  {result['target']}: {result['measured']}: {'met' if result['met'] else 'missed'} ({result['scenario']}, {result['rounds']} rounds)")
    measured = [result for result in results if result["met"] is not None]
    print(f"targets met: {sum(1 for result in measured if result['met'])} of {len(measured)} measured ({len(results)} in all)")
    # What this summary does not rest on: said once more at the end, and in the exit status.
    shortfalls = []
    if skipped:
        shortfalls.append(f"{len(skipped)} results left out (above)")
    if len(measured) < len(results):
        shortfalls.append(f"{len(results) - len(measured)} targets not measured")
    if audit_fallback:
        shortfalls.append("verify and rebuild measured on the 10 k ledger (reads-10k): the 1 M audit is missing")
    if shortfalls:
        print("not every round counted: " + "; ".join(shortfalls))
    try:
        with open(os.path.join(out, "targets.json"), "w") as file:
            json.dump(results, file, indent=1)
            file.write("\n")
    except OSError as error:
        print(f"warning: {os.path.join(out, 'targets.json')} not written: {error.strerror or error}", file=sys.stderr)
        return 1
    return 3 if shortfalls else 0


if __name__ == "__main__":
    sys.exit(main())
