#!/usr/bin/env bash
# Runs every test: unit tests (normal and ASan/UBSan builds), integration
# tests against the real binary (normal, and the corpus import under the
# sanitizer build), and a replay of the fuzz seed corpora. Each test exits
# 0 pass, 77 skip, anything else fail. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
export FV_CORPUS=${FV_CORPUS:-$(cd .. && pwd)/shared/corpus}
LOG=${FV_TEST_LOG:-build/test-logs}
mkdir -p "$LOG"
pass=0 fail=0 skip=0 failed_names=()

run() { # name timeout cmd...
	local name=$1 to=$2; shift 2
	local log="$LOG/${name//\//_}.log" t0=$SECONDS rc
	timeout --kill-after=10 "$to" "$@" >"$log" 2>&1
	rc=$?
	case $rc in
	0) pass=$((pass + 1)); printf 'PASS %-48s %4ds\n' "$name" $((SECONDS - t0)) ;;
	77) skip=$((skip + 1)); printf 'SKIP %-48s (%s)\n' "$name" "$(tail -n 1 "$log")" ;;
	*) fail=$((fail + 1)); failed_names+=("$name")
	   printf 'FAIL %-48s rc=%d, last lines of %s:\n' "$name" $rc "$log"
	   tail -n 15 "$log" | sed 's/^/    /' ;;
	esac
}

only=${1:-}
if [ -z "$only" ] || [[ style == *$only* ]]; then
	run "style/clang-format" 120 make --no-print-directory format-check
fi
for t in build/tests/test_*; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	[ -n "$only" ] && [[ $n != *$only* ]] && continue
	run "unit/$n" 300 "$t"
done
for t in build-san/tests/test_*; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	[ -n "$only" ] && [[ $n != *$only* ]] && continue
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		run "unit-asan/$n" 600 "$t"
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	n=$(basename "$t" .sh)
	[ -n "$only" ] && [[ $n != *$only* ]] && continue
	FV_BUILD=build run "integration/$n" 1200 bash "$t"
done
# The sanitizer build drives the whole corpus too (imports, extractions).
for t in tests/integration/test_corpus.sh tests/integration/test_malformed.sh; do
	[ -f "$t" ] || continue
	n=$(basename "$t" .sh)
	[ -n "$only" ] && [[ $n != *$only* ]] && continue
	FV_BUILD=build-san FV_QUICK=1 ASAN_OPTIONS=detect_leaks=1 \
		run "integration-asan/$n" 1200 bash "$t"
done
for f in build-fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	n=$(basename "$f")
	[ -n "$only" ] && [[ $n != *$only* ]] && continue
	seeds=tests/fuzz/corpus/$n
	[ -d "$seeds" ] || continue
	run "fuzz-replay/$n" 300 bash -c "find '$seeds' -type f -print0 | xargs -0 -r '$f' -runs=0 -rss_limit_mb=2048"
done
echo
if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
