#!/usr/bin/env bash
# Issue 17's performance table in one run: builds the benchmarks (release preset), runs each
# measure, collects their JSON lines, and prints one table (metric | syncvault | alternative |
# ratio/value | goal | met?) and one JSON document.
#
#   bash scripts/perf-table.sh [--quick] [--json FILE] [--json-only] [--dir DIR] [--no-build]
#                              [--no-express]
#
#   --quick      small sizes (a minute or two on an idle 2-core machine); default: a fuller run
#   --json FILE  also write the JSON document to FILE
#   --json-only  print only the JSON document on stdout (the table goes to stderr)
#   --dir DIR    where the journals and databases go (default: $TMPDIR); the disk is part of
#                the durable rows, so keep it the disk an app would use
#   --no-build   use build/release as it is
#   --no-express skip the express row even when node and npm can install express (the first
#                run installs it into build/perf-express with `npm install express`)
#
# Sizes: --quick: durable 1,000 inserts x 3 rounds, reopen 100,000 actions x 3, memory 50,000,
# drain 4,000 POSTs x 4 rounds, compile best of 1 (about 2.5 minutes on a loaded 2-core
# machine). Default: 2,000 x 5, 1,000,000 x 3, 200,000, 20,000 x 10, best of 3 (about 8).
#
# What each row runs (every measure of a row comes from the same run of the same program):
#   durable 8p / 1p  syncvault_storage_bench 0 N DIR durable --json: vault + file_journal
#                    (group_commit with 8 producers, per_record with 1) beside SQLite WAL FULL
#                    and a raw write+fdatasync loop, median of interleaved rounds
#   drain            syncvault_network_bench N R 0 [--url URL]: the vault (file_journal,
#                    process_queue()) beside a raw libcurl loop with one reused handle, against
#                    the Beast test server and, if it can be installed, an express server;
#                    then again with --one-cpu (client and server threads on one CPU: on a
#                    2-core VM the cross-CPU wake-up of each round trip costs more than the
#                    vault and moves from run to run; on one CPU the rows repeat)
#   reopen           syncvault_storage_bench N 0 DIR reopen-vault / reopen-sqlite (and
#                    reopen-journal, file_journal alone, for context), each in a fresh process,
#                    alternating, median (the files are in the page cache for both)
#   memory           syncvault_storage_bench N 0 DIR vault-memory: heap growth (mallinfo2) per
#                    action posted into an offline vault over file_journal
#   compile          scripts/compile-cost.sh --names "json vault" --json (CPU time, max RSS)
# Never run by CI. Numbers from a loaded machine say so: quote `uptime` with them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0 json_file="" json_only=0 dir=${TMPDIR:-/tmp} build=1 express=1
while [[ $# -gt 0 ]]; do
    case $1 in
    --quick) quick=1; shift ;;
    --json) json_file=$2; shift 2 ;;
    --json-only) json_only=1; shift ;;
    --dir) dir=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --no-express) express=0; shift ;;
    *) sed -n '2,21p' "$0" >&2; exit 2 ;;
    esac
done
command -v python3 >/dev/null || { echo "perf-table.sh needs python3" >&2; exit 1; }

if ((quick)); then
    durable_n=1000 durable_rounds=3 reopen_n=100000 reopen_rounds=3 memory_n=50000
    drain_n=4000 drain_rounds=4 compile_runs=1
else
    durable_n=2000 durable_rounds=5 reopen_n=1000000 reopen_rounds=3 memory_n=200000
    drain_n=20000 drain_rounds=10 compile_runs=3
fi

say() { echo "$@" >&2; }
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
if ((build)); then
    say "== building (release preset)"
    cmake --preset release >/dev/null
    cmake --build --preset release -j2 --target syncvault_storage_bench syncvault_network_bench >&2
fi
bin=$root/build/release/tests/bench
storage=$bin/syncvault_storage_bench
network=$bin/syncvault_network_bench
[[ -x $storage && -x $network ]] || { echo "missing $storage or $network" >&2; exit 1; }

work=$(mktemp -d "$dir/syncvault-perf-XXXXXX")
lines=$work/lines.jsonl
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
# Keeps the JSON lines (a line starting with '{') of a command's output, tagged with `tag`.
collect() { # tag command...
    local tag=$1; shift
    "$@" | tee "$work/last.out" >&2
    grep '^{' "$work/last.out" | python3 -c '
import json, sys
for line in sys.stdin:
    d = json.loads(line); d["tag"] = sys.argv[1]; print(json.dumps(d))' "$tag" >>"$lines"
}

say "== durable enqueue: $durable_n inserts, $durable_rounds rounds"
SYNCVAULT_BENCH_ROUNDS=$durable_rounds collect durable "$storage" 0 "$durable_n" "$work" durable --json

say "== reopen: $reopen_n pending actions, fresh process each, $reopen_rounds rounds"
collect prepare "$storage" "$reopen_n" 0 "$work" reopen-prepare
for ((i = 0; i < reopen_rounds; ++i)); do
    collect reopen "$storage" "$reopen_n" 0 "$work" reopen-vault
    collect reopen "$storage" "$reopen_n" 0 "$work" reopen-sqlite
    collect reopen "$storage" "$reopen_n" 0 "$work" reopen-journal
done
rm -rf "$work/reopen-journal" "$work"/reopen.db*

say "== memory: $memory_n actions posted into an offline vault"
collect memory "$storage" "$memory_n" 0 "$work" vault-memory

say "== drain: $drain_n POSTs, $drain_rounds rounds, Beast test server"
collect drain_beast "$network" "$drain_n" "$drain_rounds" 0
say "== drain again, every thread on one CPU (the software's cost without cross-CPU wake-ups)"
collect drain_beast_1cpu "$network" "$drain_n" "$drain_rounds" 0 --one-cpu

express_status="not tried (--no-express)"
if ((express)); then
    node_dir=$root/build/perf-express
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        express_status="no node/npm on this machine"
    elif [[ -d $node_dir/node_modules/express ]] ||
        { mkdir -p "$node_dir" && (cd "$node_dir" && npm install --no-audit --no-fund --silent express >&2); }; then
        cat >"$work/server.js" <<'JS'
// What the Beast test server does for POST /api/jobs: remember the idempotency key, echo the body.
const express = require('express');
const app = express();
const seen = new Map();
app.use(express.raw({ type: '*/*', limit: '1mb' }));
app.post('/api/jobs', (req, res) => {
    const key = req.get('Idempotency-Key');
    if (key !== undefined && !seen.has(key)) seen.set(key, req.body);
    res.status(200).type('application/json').send(req.body);
});
const server = app.listen(0, '127.0.0.1', () => console.log(server.address().port));
server.keepAliveTimeout = 60000;
JS
        NODE_PATH=$node_dir/node_modules node "$work/server.js" >"$work/port" 2>"$work/server.err" &
        server_pid=$!
        for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
        if [[ -s $work/port ]]; then
            say "== drain: $drain_n POSTs, $drain_rounds rounds, express $(NODE_PATH=$node_dir/node_modules node -p 'require("express/package.json").version') on node $(node --version)"
            collect drain_express "$network" "$drain_n" "$drain_rounds" 0 --url "http://127.0.0.1:$(cat "$work/port")"
            express_status="ran"
        else
            express_status="express server did not start: $(head -c 200 "$work/server.err")"
        fi
        kill "$server_pid" 2>/dev/null || true
        server_pid=""
    else
        express_status="npm install express failed (no registry access?)"
    fi
fi

say "== compile cost: $compile_runs run(s)"
collect compile bash "$root/scripts/compile-cost.sh" --runs "$compile_runs" --names "json vault" --json

elapsed=$(($(date +%s) - started))
load=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$lines" "$json_file" "$json_only" "$quick" "$elapsed" "$load" "$express_status" "$(nproc)" "$load_before" <<'PY'
import json, statistics, sys, datetime, platform
lines_file, json_file, json_only, quick, elapsed, load, express_status, cores, load_before = sys.argv[1:10]
got = [json.loads(l) for l in open(lines_file)]
def one(tag, bench=None):
    for d in got:
        if d["tag"] == tag and (bench is None or d.get("bench") == bench):
            return d
    return None
def every(tag, bench):
    return [d for d in got if d["tag"] == tag and d.get("bench") == bench]

rows = []
def row(metric, sv, alt, value, goal, met, unit_value, measured):
    rows.append({"metric": metric, "syncvault": sv, "alternative": alt, "value": value,
                 "value_text": unit_value, "goal": goal, "met": met, "measured": measured})

def fmt_rate(x): return f"{x:,.0f}/s"
def ratio_text(x): return f"{x:.2f}x"

d = one("durable", "storage_durable")
if d:
    r = {x["row"]: x for x in d["rows"]}
    v8, s8 = r["vault"]["p8_per_s"], r["sqlite"]["p8_per_s"]
    v1, raw1 = r["vault"]["p1_per_s"], r["raw"]["p1_per_s"]
    row("durable enqueue, 8 producers, group commit, vs SQLite WAL FULL, 8 producers",
        f"{fmt_rate(v8)} ({r['vault']['p8_syncs_per_insert']:.3f} syncs/insert)", f"SQLite {fmt_rate(s8)}",
        v8 / s8, ">= 5x", v8 / s8 >= 5, ratio_text(v8 / s8),
        f"vault post() over file_journal, {d['inserts']} inserts, median of {d['rounds']} rounds")
    row("durable enqueue, 1 producer, vs raw write+fdatasync",
        fmt_rate(v1), f"raw loop {fmt_rate(raw1)}", v1 / raw1, ">= 0.95x", v1 / raw1 >= 0.95, ratio_text(v1 / raw1),
        f"vault post() over file_journal per_record, {d['inserts']} inserts, median of {d['rounds']} rounds")

def drain_rows(b, cpu_metric, wall_metric, how):
    """The two drain rows of one run of syncvault_network_bench against the test server."""
    row(cpu_metric, f"{b['vault_client_cpu_us']:.1f} us", f"raw loop {b['raw_client_cpu_us']:.1f} us",
        b["client_cpu_over_raw_us"], "<= 5 us", b["client_cpu_over_raw_us"] <= 5,
        f"{b['client_cpu_over_raw_us']:+.1f} us",
        f"{how}; curl_transport alone {b['curl_transport_client_cpu_us']:.1f} us, "
        f"vault over memory_storage {b['vault_memory_client_cpu_us']:.1f} us")
    row(wall_metric, fmt_rate(b["vault_file_journal_per_s"]), f"raw loop {fmt_rate(b['raw_reused_per_s'])}",
        b["ratio_vs_raw"], ">= 0.95x", b["ratio_vs_raw"] >= 0.95, ratio_text(b["ratio_vs_raw"]),
        f"{b['n']} POSTs, {b['rounds']} interleaved rounds")

b = one("drain_beast", "network")
if b:
    drain_rows(b, "drain, one lane, file_journal: client CPU per action over the raw reused-handle libcurl loop",
               "drain wall rate vs the raw loop, Beast test server",
               "process_queue() thread's CPU, Beast test server")
b1 = one("drain_beast_1cpu", "network")
if b1:
    drain_rows(b1, "drain on one CPU (client and server threads): client CPU per action over the raw loop",
               "drain wall rate vs the raw loop, one CPU, Beast test server",
               "as above with --one-cpu")
e = one("drain_express", "network")
if e:
    row("drain wall rate vs the raw loop, express server",
        fmt_rate(e["vault_file_journal_per_s"]), f"raw loop {fmt_rate(e['raw_reused_per_s'])}",
        e["ratio_vs_raw"], ">= 0.95x", e["ratio_vs_raw"] >= 0.95, ratio_text(e["ratio_vs_raw"]),
        f"{e['n']} POSTs, {e['rounds']} interleaved rounds; client CPU over raw {e['client_cpu_over_raw_us']:+.1f} us")

rv = every("reopen", "storage_reopen_vault")
rs = every("reopen", "storage_reopen_sqlite")
rj = every("reopen", "storage_reopen_journal")
if rv and rs and rs[0]["seconds"] is not None:
    tv = statistics.median(x["seconds"] for x in rv)
    ts = statistics.median(x["seconds"] for x in rs)
    n = rv[0]["n"]
    row(f"reopen with {n:,} pending, 256-byte bodies: open + load into a vault vs SQLite SELECT + parse",
        f"{tv:.3f} s", f"SQLite {ts:.3f} s", tv / ts, "<= 0.5x", tv / ts <= 0.5, ratio_text(tv / ts),
        f"fresh process each, median of {len(rv)}, page cache warm for both; CPU time "
        f"{statistics.median(x['cpu_seconds'] for x in rv):.3f} s vs {statistics.median(x['cpu_seconds'] for x in rs):.3f} s"
        + (f"; file_journal alone (open + load_all) {statistics.median(x['seconds'] for x in rj):.3f} s" if rj else ""))

m = one("memory", "storage_vault_memory")
if m:
    prep = one("prepare", "storage_reopen_prepare")
    rec = f"body {m['body_bytes']} B, serialized action {prep['serialized_bytes']} B" if prep else "-"
    row("resident memory per pending action inside a vault, 256-byte bodies",
        f"{m['heap_bytes_per_action']:.0f} B heap ({m['rss_bytes_per_action']:.0f} B RSS)", rec,
        m["heap_bytes_per_action"], "<= 200 B", m["heap_bytes_per_action"] <= 200,
        f"{m['heap_bytes_per_action']:.0f} B",
        f"mallinfo2 uordblks growth over {m['n']:,} post()s into an offline vault (file_journal)")

c = one("compile")
if c:
    res = {x["name"]: x for x in c["results"]}
    j, v = res["json"], res["vault"]
    row("compile a TU with <syncvault/vault.hpp> posting once vs <boost/json.hpp> alone: CPU time",
        f"{v['cpu_seconds']:.1f} s", f"{j['cpu_seconds']:.1f} s", v["cpu_ratio"], "<= 2x", v["cpu_ratio"] <= 2,
        ratio_text(v["cpu_ratio"]), f"{c['compiler']} {c['flags']}, best of {c['runs']} (wall {v['time_ratio']:.2f}x)")
    row("compile, same two files: peak memory (max RSS)",
        f"{v['max_rss_mb']} MB", f"{j['max_rss_mb']} MB", v["memory_ratio"], "<= 2x", v["memory_ratio"] <= 2,
        ratio_text(v["memory_ratio"]), f"best of {c['runs']}")

meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": "quick" if quick == "1" else "full", "seconds": int(elapsed), "load_average_before": load_before, "load_average_after": load,
        "cores": int(cores), "machine": platform.platform(), "express": express_status}
doc = {"bench": "perf_table", **meta, "rows": rows, "raw": got}

cols = ["metric", "syncvault", "alternative", "ratio/value", "goal", "met?"]
table = [[r["metric"], r["syncvault"], r["alternative"], r["value_text"], r["goal"], "yes" if r["met"] else "NO"]
         for r in rows]
out = sys.stderr if json_only == "1" else sys.stdout
print(f"\nsyncvault perf table ({meta['mode']} run, {meta['date']}, {elapsed} s, {cores} cores, "
      f"load average before/after: {load_before} / {load}; express: {express_status})\n", file=out)
print("| " + " | ".join(cols) + " |", file=out)
print("|" + "---|" * len(cols), file=out)
for t in table:
    print("| " + " | ".join(t) + " |", file=out)
print(file=out)
text = json.dumps(doc)
if json_file:
    with open(json_file, "w") as f:
        f.write(json.dumps(doc, indent=1) + "\n")
print(text)
PY
