#!/bin/sh
# Builds corpus/<target> for every fuzz target: the committed seeds (seeds/<target>, written by
# `cargo run --example seeds`), plus what is made at run time and never committed:
# - decode: the real Oracle logs of ../shared/fixtures/oracle-real (third-party bytes; set
#   REDOVAULT_ORACLE_REAL to another copy), each input 8 bytes that choose the chunk sizes of
#   the split feed, then the redo bytes;
# - config: the example configurations of deploy/config.
# Inputs already in corpus/ (found by earlier runs) are kept.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
for seeds in "$here"/seeds/*/; do
  target=$(basename "$seeds")
  mkdir -p "$here/corpus/$target"
  cp "$seeds"* "$here/corpus/$target/"
done

fx=${REDOVAULT_ORACLE_REAL:-$root/../shared/fixtures/oracle-real}/free23-le-512
out="$here/corpus/decode"
mkdir -p "$out"
if [ -f "$fx/arch1_16_1224959854.dbf" ]; then
  { printf '\000\000\000\000\000\000\000\000'; cat "$fx/arch1_16_1224959854.dbf"; } > "$out/seq16_whole"
  { printf '\001\002\003\062\144\310\377\007'; cat "$fx/arch1_16_1224959854.dbf"; } > "$out/seq16_chunks"
  { printf '\011\011\011\011\011\011\011\011'; head -c 8192 "$fx/arch1_15_1224959854.dbf"; } > "$out/seq15_head16"
  { printf '\005\005\005\005\005\005\005\005'; head -c 1024 "$fx/arch1_15_1224959854.dbf"; } > "$out/seq15_headers"
else
  echo "seed.sh: no real Oracle logs in $fx; corpus/decode starts from the committed seeds only" >&2
fi

mkdir -p "$here/corpus/config"
for f in "$root"/deploy/config/*.toml; do
  cp "$f" "$here/corpus/config/$(basename "$f")"
done
