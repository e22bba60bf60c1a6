#!/usr/bin/env bash
# deploy/bench.sh fuzz: builds every fuzz target of tests/fuzz, makes the corpora (seed.sh),
# runs each target (or those of FUZZ_TARGETS) for FUZZ_SECONDS (default 600) seconds, FUZZ_JOBS
# (default 2) at a time, and
# writes the table (executions, exec/s, cov and ft from libFuzzer's final status, crashes,
# hangs, out-of-memory, peak RSS) with the command and the machine between the fuzz markers
# of BENCHMARKS.md. Logs stay in tests/fuzz/target/fuzz-logs; an input that crashed or hung is
# in tests/fuzz/artifacts/<target>/.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${FUZZ_SECONDS:-600}
JOBS=${FUZZ_JOBS:-2}
cd "$ROOT/tests/fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
RUSTC_BOOTSTRAP=1 cargo fuzz build --fuzz-dir . -O -a
./seed.sh
started=$(date -u '+%Y-%m-%d %H:%M UTC')
read -ra targets <<<"${FUZZ_TARGETS:-}"
rows=$(FUZZ_JOBS=$JOBS ./run.sh time "$SECS" "${targets[@]}")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
machine="$(nproc) cores ($cpu), $(free -g | awk '/^Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
section=$(cat <<MD
<!-- fuzz:begin (written by deploy/bench.sh fuzz) -->
Run $started: \`FUZZ_SECONDS=$SECS FUZZ_JOBS=$JOBS deploy/bench.sh fuzz\` on $machine.
Each target built with \`cargo fuzz build -O -a\` (optimised, debug assertions and overflow
checks on), \`-rss_limit_mb=512 -timeout=10\`, its \`-max_len\` from tests/fuzz/run.sh. cov and
ft are libFuzzer's last status line (edges and features, comparable only within one build);
corpus is the inputs kept at the end; crashes, hangs and out-of-memory count 1 when the run
stopped on one (libFuzzer stops at the first finding: the duration shows when).

| target | duration | executions | exec/s | cov | ft | corpus | crashes | hangs | oom | peak RSS |
|---|---|---|---|---|---|---|---|---|---|---|
$rows
<!-- fuzz:end -->
MD
)
python3 - "$ROOT/BENCHMARKS.md" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
pattern = re.compile(r"<!-- fuzz:begin.*?<!-- fuzz:end -->", re.S)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n## Fuzzing\n\n" + section + "\n"
open(path, "w").write(text)
PY
echo "$section"
