#!/bin/bash
# Interleaved CPU-time pairs of criteria_profile (docs/criteria.md, "Measured
# figures"): on the shared, noisy VM only runs made in the same minutes, in
# alternating order, can be compared. Runs A and B in turn PAIRS times and
# prints every run, then the range of each side and how many pairs B won.
#   A=/tmp/criteria_profile_old B=build/crit-speed-rel/bench/criteria_profile \
#     bench/criteria_pairs.sh                  # two builds
#   A=build/crit-speed-rel/bench/criteria_profile B_ENV=GLIBC_TUNABLES=glibc.malloc.hugetlb=1 \
#     bench/criteria_pairs.sh                  # one build, two environments
#   A=build/crit-speed-rel/bench/criteria_profile A_ARGS=--rules=/tmp/old_rules \
#     bench/criteria_pairs.sh                  # one build, two rule directories
# PAIRS (default 5) and PASSES (default 3, after one warm-up pass) set the
# size; A_ENV / B_ENV are "NAME=value" settings, A_ARGS / B_ARGS extra
# criteria_profile arguments, for that side only.
set -u
A=${A:?A=path to a criteria_profile binary}
B=${B:-$A}
A_ENV=${A_ENV:-}
B_ENV=${B_ENV:-}
A_ARGS=${A_ARGS:-}
B_ARGS=${B_ARGS:-}
PAIRS=${PAIRS:-5}
PASSES=${PASSES:-3}
run() {  # $1 = binary, $2 = env setting ("" for none), $3 = extra args; prints studies/s
  local line
  # shellcheck disable=SC2086  # $3: zero or more arguments
  if [ -n "$2" ]; then
    line=$(env "$2" "$1" --warm=1 --passes="$PASSES" $3 2>&1 | tail -n 1)
  else
    line=$("$1" --warm=1 --passes="$PASSES" $3 2>&1 | tail -n 1)
  fi
  echo "$line" | grep -o '[0-9]* studies/s' | cut -d' ' -f1
}
a_all=()
b_all=()
b_won=0
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 1; i <= PAIRS; i++)); do
  if ((i % 2)); then
    a=$(run "$A" "$A_ENV" "$A_ARGS")
    b=$(run "$B" "$B_ENV" "$B_ARGS")
  else
    b=$(run "$B" "$B_ENV" "$B_ARGS")
    a=$(run "$A" "$A_ENV" "$A_ARGS")
  fi
  if [ -z "$a" ] || [ -z "$b" ]; then echo "pair $i: a run failed"; exit 1; fi
  echo "pair $i: A $a studies/s, B $b studies/s"
  a_all+=("$a")
  b_all+=("$b")
  if ((b > a)); then b_won=$((b_won + 1)); fi
done
range() { printf '%s\n' "$@" | sort -n | sed -n '1p;$p' | paste -sd- ; }
echo "A: $(range "${a_all[@]}") studies/s; B: $(range "${b_all[@]}") studies/s;" \
  "B faster in $b_won of $PAIRS pairs; load: $(cut -d' ' -f1-3 /proc/loadavg)"
