#!/bin/sh
# One shard: counts the words of corpus/part-$NEXUS_SHARD_INDEX.txt.
# Its result (NEXUS_RESULT_FILE) is one "COUNT WORD" line per word.
set -eu
tr -cs 'A-Za-z' '\n' < "corpus/part-$NEXUS_SHARD_INDEX.txt" | tr 'A-Z' 'a-z' | sed '/^$/d' | sort | uniq -c > "$NEXUS_RESULT_FILE"
echo "shard $NEXUS_SHARD_INDEX of $NEXUS_SHARD_COUNT: $(wc -l < "$NEXUS_RESULT_FILE") distinct words"
