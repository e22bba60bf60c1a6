#!/usr/bin/env bash
# One Markdown table row from a libFuzzer log (run.sh time): target, seconds, executions,
# exec/s, cov, ft, corpus, crashes, hangs, out-of-memory, peak RSS.
set -euo pipefail
t=$1
log=$2
stat() { grep -o "^stat::$1:[[:space:]]*[0-9]*" "$log" | tail -n1 | grep -o '[0-9]*$' || echo '?'; }
last=$(grep -E '^#[0-9]+' "$log" | tail -n1 || true)
field() { echo "$last" | grep -o "$1: [0-9]*[a-zA-Z]*" | head -n1 | cut -d' ' -f2 || true; }
secs=$(grep -o 'seconds=[0-9]*' "$log" | tail -n1 | cut -d= -f2)
crash=0; hang=0; oom=0
grep -q 'SUMMARY: libFuzzer: timeout' "$log" && hang=1
grep -q 'out-of-memory' "$log" && oom=1
if grep -qE 'SUMMARY: libFuzzer: (deadly signal|fuzz target exited)|panicked at' "$log"; then crash=1; fi
echo "| \`$t\` | $secs s | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | $(field cov) | $(field ft) | $(field corp) | $crash | $hang | $oom | $(stat peak_rss_mb) MB |"
