#!/bin/bash
# Service-level matching figures (BENCHMARKS.md, "The service, from the store"):
# serve's first start (snapshot built and saved) and second start (snapshot
# file read) to SERVING with peak RSS, a 2,000-patient batch over gRPC, the
# open-loop load_client at 20/s (with perf on the server) and 100/s, and the
# in-process batch. Loopback only; every step is bounded in time.
#   B=build/match-perf STORE=/tmp/m100/s.db PATIENTS=/tmp/m100/p2000.jsonl \
#     bench/match_service.sh
# (the store and patients from gen_corpus + trialmatch import, see BENCHMARKS.md).
# Deletes STORE.snapshot first, so the first start builds it. RULES=DIR: the
# rules the store was compiled with (e.g. an older checkout's rules/), so the
# stored compiled criteria are used rather than compiled again.
# Huge pages for malloc as in the README's run command: GLIBC_TUNABLES in the
# environment applies to every process the script starts.
set -u
B=${B:-build/match-perf}
RULES_ARG=${RULES:+--rules=$RULES}
S=${STORE:-/tmp/m100/s.db}
PORT=${PORT:-50791}
out=${OUT:-/tmp/svc}
mkdir -p $out
TM=$B/trialmatch
. "$(dirname "$0")/serve_common.sh"
rm -f "$S.snapshot"
echo -n "first: "; start_serve $out/serve_first.log || exit 1
sleep 8   # let the snapshot file be written
ls -la $S.snapshot
stop_serve
echo -n "second: "; start_serve $out/serve_second.log || exit 1
echo "--- batch over gRPC, 2000 patients"
/usr/bin/time -f "wall %e s, cpu %U+%S" $B/trialmatch match --server=127.0.0.1:$PORT --patients=${PATIENTS:-/tmp/m100/p2000.jsonl} --out=$out/out_server.jsonl 2>&1 | tail -2
echo "--- load_client 20/s (perf on the server)"
perf record -F 999 -g -p $SP -o $out/perf.serve.data -- sleep 18 > /dev/null 2>&1 &
PP=$!
$B/bench/load_client --target=127.0.0.1:$PORT --rate=20 --duration=20 --patients=1000 2>&1 | tail -6
wait $PP
for rate in 100 250 500; do
  echo "--- load_client $rate/s"
  $B/bench/load_client --target=127.0.0.1:$PORT --rate=$rate --duration=20 --patients=1000 2>&1 | tail -6
done
grep -E 'VmHWM|VmRSS' /proc/$SP/status
stop_serve
echo "--- batch in process, 2000 patients"
/usr/bin/time -f "wall %e s, cpu %U+%S, maxrss %M kB" $B/trialmatch match --store=$S $RULES_ARG --patients=${PATIENTS:-/tmp/m100/p2000.jsonl} --out=$out/out_local.jsonl 2>&1 | tail -3
