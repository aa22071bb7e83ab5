#!/usr/bin/env bash
# Sync and import throughput of the real `trialmatch` binary (docs/sync.md,
# "Measured"). Runs:
#   1. a full sync of EVERY recorded study (--statuses=ALL, pageSize 1000,
#      no rate limit) from the fake ClinicalTrials.gov on 127.0.0.1, into an
#      empty store; then the same sync again (all unchanged);
#   2. an import of the corpus as one JSON array (the website's download);
#   3. an import of a generated array of ~IMPORT_BYTES (the corpus repeated
#      with fresh ids) — peak RSS shows that memory does not grow with the
#      file.
# Each under /usr/bin/time -v: the binary's summary line (studies/s, MB/s)
# and "Maximum resident set size" are printed.
#
# usage: bench/sync_bench.sh TRIALMATCH_BINARY SHARED_DATA_DIR [PYTHON]
#        environment: WORK_DIR (default: a new temp dir, removed at the end),
#                     IMPORT_BYTES (default 1000000000; 0 skips step 3)
set -euo pipefail
bin=$(realpath "$1")
data=$(realpath "$2")
python=${3:-/usr/bin/python3}
src=$(cd "$(dirname "$0")/.." && pwd)
import_bytes=${IMPORT_BYTES:-1000000000}
work=${WORK_DIR:-}
cleanup_work=0
if [[ -z "$work" ]]; then
  work=$(mktemp -d)
  cleanup_work=1
fi
mkdir -p "$work"

"$python" -B "$src/tests/fake_ctgov/fake_ctgov.py" --data-dir "$data/ctgov_v2" \
  --port 0 --max-lifetime 7200 >"$work/fake.out" 2>"$work/fake.err" &
fake=$!
cleanup() {
  kill "$fake" 2>/dev/null || true
  wait "$fake" 2>/dev/null || true
  if [[ $cleanup_work == 1 ]]; then rm -rf "$work"; fi
}
trap cleanup EXIT
for _ in $(seq 1 600); do
  grep -q LISTENING "$work/fake.out" 2>/dev/null && break
  sleep 0.1
done
port=$(awk '/LISTENING/ {print $2}' "$work/fake.out")
[[ -n "$port" ]] || { cat "$work/fake.err"; echo "fake did not start" >&2; exit 1; }

measure() {  # name, command...
  local name=$1
  shift
  echo "== $name"
  echo "\$ $*"
  /usr/bin/time -v "$@" >"$work/out.txt" 2>"$work/time.txt" || {
    cat "$work/out.txt" "$work/time.txt"
    exit 1
  }
  grep -E "^(full|incremental) sync|^import:|^sync skipped" "$work/out.txt" || cat "$work/out.txt"
  grep -E "Elapsed \(wall|User time|System time|Maximum resident" "$work/time.txt" | sed "s/^\\s*/   /"
}

sync_args=(--ctgov_base_url="http://127.0.0.1:$port/api/v2" --requests_per_second=0
           --statuses=ALL --page_size=1000 --log_level=warning)
measure "full sync, every recorded study, empty store" \
  "$bin" sync --store="$work/sync.db" --full "${sync_args[@]}"
measure "full sync again (all unchanged)" \
  "$bin" sync --store="$work/sync.db" --full "${sync_args[@]}"

"$python" -B "$src/bench/make_studies_file.py" --data-dir "$data/ctgov_v2" \
  --out "$work/ctg-studies.json" --copies 1
measure "import of the corpus as one JSON array" \
  "$bin" import --store="$work/import.db" --statuses=ALL --log_level=warning \
  "$work/ctg-studies.json"

if [[ "$import_bytes" != 0 ]]; then
  "$python" -B "$src/bench/make_studies_file.py" --data-dir "$data/ctgov_v2" \
    --out "$work/big.json" --target-bytes "$import_bytes"
  measure "import of a generated array of ~$import_bytes bytes" \
    "$bin" import --store="$work/big.db" --statuses=ALL --log_level=warning \
    "$work/big.json"
  ls -l "$work/big.json" "$work/big.db" | awk '{print "   " $5 " bytes  " $9}'
fi
