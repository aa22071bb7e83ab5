#!/bin/bash
# Server CPU per MatchPatient request at a fixed rate: `trialmatch serve`
# from the store's snapshot file (run bench/match_service.sh or
# `trialmatch match --store` once to write it), the open-loop load_client for
# DUR seconds at RATE/s on loopback, and the server's user+system CPU from
# /proc before and after, divided by the requests sent.
#   B=build/match-perf STORE=/tmp/m100/s.db RATE=500 DUR=20 \
#     bench/match_service_cpu.sh
# TM=path runs another trialmatch binary (interleaved before/after pairs);
# ARGS=--brute_force serves without the index (the brute-force figure);
# TAIL=12 prints the load client's whole report (latencies, errors).
# Bounded: the server is stopped at the end; waits at most 600 s for SERVING.
set -u
B=${B:-build/match-perf}
TM=${TM:-$B/trialmatch}
S=${STORE:-/tmp/m100/s.db}
PORT=${PORT:-50793}
RATE=${RATE:-500}
DUR=${DUR:-20}
log=$(mktemp)
. "$(dirname "$0")/serve_common.sh"
GLIBC_TUNABLES=glibc.malloc.hugetlb=1 start_serve $log || exit 1
hz=$(getconf CLK_TCK)
t0=$(awk '{print $14 + $15}' /proc/$SP/stat)
$B/bench/load_client --target=127.0.0.1:$PORT --rate=$RATE --duration=$DUR \
  --patients=1000 2>&1 | tail -${TAIL:-2}
t1=$(awk '{print $14 + $15}' /proc/$SP/stat)
n=$((RATE * DUR))
echo "server cpu: $(( (t1 - t0) * 1000 / hz )) ms for $n requests =" \
  "$(echo "scale=3; ($t1 - $t0) * 1000 / $hz / $n" | bc) ms/request"
stop_serve
rm -f $log
