#!/usr/bin/env bash
# The PostgreSQL peer of `circuito bench`: what a team would otherwise build. The same pre-signed events (written by
# `circuito bench --export-events`) are inserted into an append-only table — one event per transaction, as a
# service answering each submission would, with synchronous_commit=on — by 1, 8 and 32 clients (pgbench), and the
# rate of each is reported in events per second. run-scenarios.sh adds 64 and 256 clients, the connections and the
# requests in flight of the ledger's run at 64 × 4, so that PostgreSQL's best is also measured at the ledger's
# concurrency. pgbench gives every client the same number of transactions, so each client count inserts the largest
# multiple of itself that the events allow (29 984 of 30 000 with 32 clients); each result says how many it
# inserted, and its rate is over those.
#
# The table is what such a service would keep: a bigserial sequence number, the event id unique, the event as
# jsonb (parsed and checked as JSON by PostgreSQL), the time recorded, and a trigger refusing UPDATE and DELETE.
# PostgreSQL checks no signature and no rule: the comparison favours it.
#
# Usage: bash Benchmarks/postgres-peer.sh [--events N] [--clients "1 8 32"] [--json]
# Environment: CIRCUITO (the circuito binary, used as it is; without it the release build in .build-bench-release,
# built if missing), EVENTS_FILE (use these signed events, one per line, instead of exporting new ones), PEER_PORT
# (54329).
# Installs PostgreSQL from Debian (apt-get) when it is missing. Runs a private server on a private port and socket
# folder under /tmp, stopped and removed on exit.
# Exits 2 on a bad argument (before anything is installed, started or written), 1 when a step fails (pgbench's or
# that step's error on stderr).
set -Eeuo pipefail

events=20000
clients="1 8 32"
json=0
usage() { echo "usage: $0 [--events N] [--clients \"1 8 32\"] [--json]"; }
source "$(dirname "${BASH_SOURCE[0]}")/script-arguments.sh"
while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --events) [ $# -ge 2 ] || fail "--events needs a number"; events="$2"; shift 2 ;;
        --clients) [ $# -ge 2 ] || fail "--clients needs a list of numbers"; clients="$2"; shift 2 ;;
        --json) json=1; shift ;;
        *) fail "unknown argument '$1'" ;;
    esac
done
# The same bound as `circuito bench --events`.
whole_number --events "$events" 1 10000000
events=$((10#$events))
read -r -a client_counts <<< "$clients"
[ ${#client_counts[@]} -gt 0 ] || fail "--clients needs at least one number"
for count in "${client_counts[@]}"; do
    # The private server allows 300 connections; pgbench holds one more of its own.
    whole_number "each of --clients" "$count" 1 290
    # With EVENTS_FILE the file's lines are the events, counted below.
    if [ -z "${EVENTS_FILE:-}" ] && [ "$((10#$count))" -gt "$events" ]; then
        fail "--clients $count is more clients than --events $events"
    fi
done
if [ -n "${EVENTS_FILE:-}" ] && [ ! -s "$EVENTS_FILE" ]; then fail "EVENTS_FILE '$EVENTS_FILE' is missing or empty"; fi
# A binary given is used as it is: a build could not make it appear at that path.
if [ -n "${CIRCUITO:-}" ] && { [ ! -f "$CIRCUITO" ] || [ ! -x "$CIRCUITO" ]; }; then
    fail "CIRCUITO '$CIRCUITO' is not an executable file"
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
port="${PEER_PORT:-54329}"
whole_number PEER_PORT "$port" 1024 65535

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The server must not run as root: use the postgres account when we are root.
run_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Any other failure exits 1, so that 2 keeps meaning a bad argument (psql, for one, exits 2 when it cannot connect);
# `set -E` above carries this into the functions (psql, run_pg).
trap 'status=$?; echo "error: line $LINENO: \`$BASH_COMMAND\` failed (exit status $status)" >&2; exit 1' ERR

work="$(mktemp -d /tmp/circuito-pg-XXXXXX)"
chmod 755 "$work"
cleanup() {
    if [ -f "$work/data/postmaster.pid" ]; then run_pg "$bin/pg_ctl" -D "$work/data" -m immediate stop > /dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# The events: exported by circuito bench (the same generator and seed as a bench run with the same --events).
if [ -n "${EVENTS_FILE:-}" ]; then
    cp "$EVENTS_FILE" "$work/events.jsonl"
else
    circuito="${CIRCUITO:-$root/.build-bench-release/release/circuito}"
    if [ ! -x "$circuito" ]; then
        echo "building circuito (release)" >&2
        (cd "$root" && swift build -c release --scratch-path "$root/.build-bench-release" --product circuito > /dev/null)
    fi
    "$circuito" bench --events "$events" --export-events "$work/events.jsonl" --export-only > /dev/null
fi
events="$(wc -l < "$work/events.jsonl")"
for count in "${client_counts[@]}"; do
    [ "$((10#$count))" -le "$events" ] || fail "the events file holds $events events, fewer than --clients $count"
done
# PostgreSQL from Debian, once the arguments and the events are known to be good.
if ! ls /usr/lib/postgresql/*/bin/pgbench > /dev/null 2>&1; then
    echo "installing PostgreSQL (apt-get)" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-contrib > /dev/null
fi
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"

if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$work"; fi

# A private cluster: durable settings (fsync, synchronous_commit, full_page_writes are PostgreSQL's defaults and
# are set explicitly), Unix socket only, in the work folder.
run_pg "$bin/initdb" -D "$work/data" -U bench -A trust -E UTF8 > "$work/initdb.log"
run_pg "$bin/pg_ctl" -D "$work/data" -l "$work/server.log" -w -o "-p $port -k $work -c listen_addresses='' \
    -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c shared_buffers=256MB -c max_wal_size=4GB \
    -c max_connections=300" start > /dev/null

psql() { run_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -p "$port" -U bench -d postgres "$@"; }

psql <<'SQL'
CREATE TABLE ledger (
    seq bigserial PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    event jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only';
END $$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
-- The signed events, one per line, numbered; each transaction takes the next one.
CREATE TABLE staged_raw (line text NOT NULL);
CREATE TABLE staged (n bigint PRIMARY KEY, line text NOT NULL);
CREATE SEQUENCE staged_cursor;
SQL
# CSV with a quote and delimiter that never occur in the lines, so COPY reads each line exactly as it is.
psql -c "\\copy staged_raw (line) FROM '$work/events.jsonl' WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
psql -c "INSERT INTO staged SELECT row_number() OVER (), line FROM staged_raw; DROP TABLE staged_raw;"
psql -c "VACUUM ANALYZE staged;"

# One transaction per event: the next staged line, parsed as jsonb, inserted with its id. The CTE takes the next
# number once (nextval in the WHERE clause would be evaluated per row).
cat > "$work/append.sql" <<'SQL'
WITH next AS (SELECT nextval('staged_cursor') AS n)
INSERT INTO ledger (event_id, event)
SELECT parsed.event -> 'event' ->> 'id', parsed.event
FROM next JOIN staged ON staged.n = next.n, LATERAL (SELECT staged.line::jsonb AS event) parsed;
SQL
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work/append.sql"; fi

cores="$(nproc)"
results=()
for count in "${client_counts[@]}"; do
    count=$((10#$count))
    # Every client runs the same number of transactions (-t), one event each: the remainder is left out.
    per_client=$((events / count))
    psql -c "TRUNCATE ledger RESTART IDENTITY; SELECT setval('staged_cursor', 1, false); CHECKPOINT;" > /dev/null
    threads=$((count < cores ? count : cores))
    # pgbench exits non-zero when a client aborts (a line that is not JSON, say): its output says why.
    status=0
    output="$(run_pg "$bin/pgbench" -n -h "$work" -p "$port" -U bench -c "$count" -j "$threads" -t "$per_client" -f "$work/append.sql" postgres 2>&1)" || status=$?
    rate="$(printf '%s\n' "$output" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p')"
    latency="$(printf '%s\n' "$output" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')"
    rows="$(psql -t -A -c "SELECT count(*) FROM ledger")"
    if [ "$status" -ne 0 ] || [ -z "$rate" ] || [ "$rows" -ne $((per_client * count)) ]; then
        echo "error: pgbench with $count clients failed (exit status $status; $rows of $((per_client * count)) events inserted):" >&2
        printf '%s\n' "$output" >&2
        exit 1
    fi
    # pgbench's rate is in transactions per second, each one event inserted: the rate over the events inserted.
    results+=("$count $rows $rate $latency")
    if [ "$json" -eq 0 ]; then
        printf 'postgres: %2d clients  %8.0f events/s  latency average %s ms  (%d of %d events: %d per client, synchronous_commit=on)\n' \
            "$count" "$rate" "$latency" "$rows" "$events" "$per_client"
    fi
done

if [ "$json" -eq 1 ]; then
    best=0
    parts=()
    for result in "${results[@]}"; do
        set -- $result
        parts+=("{\"clients\":$1,\"events_inserted\":$2,\"events_per_second\":$(printf '%.0f' "$3"),\"latency_average_ms\":$4}")
        best="$(awk -v a="$best" -v b="$3" 'BEGIN { print (b > a ? b : a) }')"
    done
    # events_in_file: the events offered; each run's events_inserted: those it inserted (a multiple of its clients).
    printf '{"events_in_file":%d,"postgres_version":"%s","runs":[%s],"best_events_per_second":%.0f}\n' \
        "$events" "$("$bin/postgres" --version | awk '{print $3}')" "$(IFS=,; echo "${parts[*]}")" "$best"
fi
