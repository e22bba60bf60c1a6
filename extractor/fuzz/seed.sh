#!/bin/sh
# Seeds corpus/decode from the real Oracle fixtures. Each input is 8 bytes that choose the chunk
# sizes of the split feed, then the redo bytes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fx="${REDOVAULT_ORACLE_REAL:-$here/../../../shared/fixtures/oracle-real}/free23-le-512"
out="$here/corpus/decode"
mkdir -p "$out"
{ printf '\000\000\000\000\000\000\000\000'; cat "$fx/arch1_16_1224959854.dbf"; } > "$out/seq16_whole"
{ printf '\001\002\003\062\144\310\377\007'; cat "$fx/arch1_16_1224959854.dbf"; } > "$out/seq16_chunks"
{ printf '\011\011\011\011\011\011\011\011'; head -c 8192 "$fx/arch1_15_1224959854.dbf"; } > "$out/seq15_head16"
{ printf '\005\005\005\005\005\005\005\005'; head -c 1024 "$fx/arch1_15_1224959854.dbf"; } > "$out/seq15_headers"
