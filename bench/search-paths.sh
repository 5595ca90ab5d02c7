#!/usr/bin/env bash
# One request at a time, per path of bench/search.lua: which of the 12 searches make the p99 of
# bench/catalog-search.sh. Against running book-service processes (uncached ones: their Redis
# unreachable, as catalog-search.sh starts them), alternating the processes path by path and
# round by round, so a noisy machine weighs on every process alike.
#   bench/search-paths.sh URL [URL2 ...]      (BENCH_ROUNDS=7: requests per path and process)
# Prints, per path and process, the median and best time (curl's time_total) and the answer's
# SHA-256 (byte-identical answers across processes show the same digest), then the sum of the
# medians per process and its ratio to the first.
set -euo pipefail
ROUNDS="${BENCH_ROUNDS:-7}"
(($# > 0)) || { echo "usage: $0 URL [URL2 ...]" >&2; exit 2; }
mapfile -t PATHS < <(sed -n 's/^ *"\(\/api\/[^"]*\)",$/\1/p' "$(dirname "${BASH_SOURCE[0]}")/search.lua")
((${#PATHS[@]} > 0)) || { echo "no paths in search.lua" >&2; exit 1; }
declare -A SUM=()
printf '%-55s' "path"; for u in "$@"; do printf ' | %-28s' "$u (median / best ms, sha)"; done; echo
for p in "${PATHS[@]}"; do
  declare -A T=() H=()
  for ((r = 0; r < ROUNDS; r++)); do
    for u in "$@"; do
      out="$(curl -sS -o /tmp/search-paths.$$ -w '%{http_code} %{time_total}' "$u$p")"
      [[ "${out%% *}" == 200 ]] || { echo "$u$p answered ${out%% *}" >&2; exit 1; }
      T[$u]+="$(awk -v t="${out#* }" 'BEGIN { printf "%.2f\n", t * 1000 }')"$'\n'
      H[$u]="$(sha256sum </tmp/search-paths.$$ | cut -c1-12)"
    done
  done
  printf '%-55s' "$p"
  for u in "$@"; do
    read -r med best < <(printf '%s' "${T[$u]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)], v[1] }')
    SUM[$u]="$(awk -v a="${SUM[$u]:-0}" -v b="$med" 'BEGIN { print a + b }')"
    printf ' | %8s / %8s %s' "$med" "$best" "${H[$u]}"
  done
  echo
  unset T H
done
rm -f /tmp/search-paths.$$
printf '%-55s' "sum of medians (ms)"; for u in "$@"; do printf ' | %8s (%sx of the first)' "${SUM[$u]}" "$(awk -v a="${SUM[$u]}" -v b="${SUM[$1]}" 'BEGIN { printf "%.2f", a / b }')"; done; echo
