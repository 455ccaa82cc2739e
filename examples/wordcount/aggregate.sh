#!/bin/sh
# The aggregate step: NEXUS_SHARD_RESULTS_DIR holds one file per shard (0, 1, 2, 3), each the
# result of shard.sh. Sums the counts; the job's result is "COUNT WORD" lines sorted by word.
set -eu
cat "$NEXUS_SHARD_RESULTS_DIR"/* | awk '{ n[$2] += $1 } END { for (w in n) print n[w], w }' | LC_ALL=C sort -k2 > "$NEXUS_RESULT_FILE"
echo "top words:"
sort -rn "$NEXUS_RESULT_FILE" | head -5
