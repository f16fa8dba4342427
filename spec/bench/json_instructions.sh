#!/usr/bin/env bash
# The JSON codec against lua-cjson by instructions per operation (callgrind),
# the figure a shared machine does not move: each codec decodes (encodes)
# the 2 KB document of json_bench.lua 1000 and 3000 times in its own run;
# the difference, less the empty loop's, over 2000.
#   spec/bench/json_instructions.sh        never a pass/fail test
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh bench
cmake --preset release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
ir() {
  valgrind --tool=callgrind --callgrind-out-file="$WORK/out" build/mizan lua spec/bench/json_ops.lua "$@" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$WORK/out"
}
echo "instructions per operation on the 2 KB document (lower is better):"
for op in decode encode; do
  base=$(( $(ir none "$op" 3000) - $(ir none "$op" 1000) ))
  m=$(( ($(ir mizan "$op" 3000) - $(ir mizan "$op" 1000) - base) / 2000 ))
  c=$(( ($(ir cjson "$op" 3000) - $(ir cjson "$op" 1000) - base) / 2000 ))
  printf '  %-6s mizan %7d  lua-cjson %7d  cjson/mizan %.2fx\n' "$op" "$m" "$c" "$(echo "$c / $m" | bc -l)"
done
