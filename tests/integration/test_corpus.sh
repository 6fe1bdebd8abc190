#!/usr/bin/env bash
# Every capture of ../shared/corpus outside malformed/ goes through
# `flowvault import`, then every flow and the whole store are extracted and
# checked against tshark and an independent reader (oracle.py says what is
# checked). Each capture is also imported with --compress zstd:3 and every
# extraction from that store must equal the uncompressed one, byte for
# byte (issue 4; FV_COMPRESS=zstd:L picks the level, "" turns it off).
# FV_QUICK=1 (the sanitizer run) takes the files under 1 MB.
set -u
cd "$(dirname "$0")/../.."
FV=${FV_BUILD:-build}/flowvault
CORPUS=${FV_CORPUS:-../shared/corpus}
[ -x "$FV" ] || { echo "no $FV: run make first"; exit 1; }
[ -d "$CORPUS" ] || { echo "no corpus at $CORPUS"; exit 77; }
command -v tshark >/dev/null || { echo "tshark missing (make deps)"; exit 77; }
export FV
export FV_COMPRESS=${FV_COMPRESS-zstd:3}
list=$(mktemp)
trap 'rm -f "$list"' EXIT
find "$CORPUS" -type f \( -name '*.pcap' -o -name '*.pcapng' \) \
	-not -path '*/malformed/*' | sort >"$list"
if [ -n "${FV_QUICK:-}" ]; then
	find "$CORPUS" -type f \( -name '*.pcap' -o -name '*.pcapng' \) \
		-not -path '*/malformed/*' -size -1024k | sort >"$list"
fi
check() {
	f=$1
	rel=${f#"$CORPUS"/}
	exp="$CORPUS/expected/$(dirname "$rel")_$(basename "${rel%.*}").flows.tsv"
	/usr/bin/python3 tests/integration/oracle.py "$FV" "$f" "$exp"
}
export -f check
export CORPUS
out=$(xargs -a "$list" -P 2 -I{} bash -c 'check "$1"' _ {} 2>&1)
echo "$out"
n=$(wc -l <"$list")
bad=$(grep -c '^FAIL\|failed' <<<"$out")
echo "$n captures, $bad failed"
[ "$bad" -eq 0 ]
