# Sourced by the bench/match_service*.sh scripts: start and stop a loopback
# `trialmatch serve` on a store, offline.
#   TM (binary), S (store), PORT, RULES_ARG, ARGS (extra flags) from the caller.
# start_serve LOG: starts it with its log in LOG, waits for SERVING (at most
# 600 s; fails at once if the server dies), prints the time to SERVING and
# the server's peak and current RSS; the server's pid is in SP.
start_serve() {
  local log=$1
  local t0=$(date +%s.%N)
  $TM serve --store=$S ${RULES_ARG:-} --offline --listen=127.0.0.1:$PORT \
    ${ARGS:-} > $log 2>&1 &
  SP=$!
  local waited=0
  while ! grep -q "SERVING" $log; do
    sleep 0.1
    waited=$((waited + 1))
    if ! kill -0 $SP 2>/dev/null; then echo "serve died"; return 1; fi
    if [ $waited -gt 6000 ]; then echo "not SERVING after 600 s"; kill $SP; return 1; fi
  done
  local t1=$(date +%s.%N)
  echo "to SERVING $(echo "$t1 - $t0" | bc) s; $(grep -E 'VmHWM|VmRSS' /proc/$SP/status | tr '\n' ' ')"
}
stop_serve() { kill -TERM $SP; wait $SP; }
