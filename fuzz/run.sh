#!/usr/bin/env bash
# Fuzzes weir's parsers with AFL++ (cargo-afl, stable Rust): every target in fuzz_targets/ (or
# the ones named) for SECONDS seconds of fuzzing each (default 60), starting from the checked-in
# corpus/<target>/, then fails if AFL recorded any crash. Installs cargo-afl when missing;
# cargo-afl builds its own AFL++ (afl-fuzz included) from the source it ships, so no system AFL
# is needed. A crash found becomes a regression test beside the code it broke.
#
#   fuzz/run.sh 30                  # every target; findings land in fuzz/out/<target>/default/crashes/
#   fuzz/run.sh 600 frame_decoder   # one target for ten minutes
set -euo pipefail

seconds="${1:-60}"
shift || true
case "$seconds" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS] [TARGET...]" >&2
	exit 2
	;;
esac

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
# Instrumented builds get their own target directory so they never evict the workspace's.
export CARGO_TARGET_DIR="$here/target"

if ! cargo afl --version >/dev/null 2>&1; then
	echo "run.sh: installing cargo-afl" >&2
	cargo install cargo-afl --locked
fi
# cargo-afl builds AFL++ once per rustc; "already built" is the normal answer afterwards.
if ! out="$(cargo afl config --build 2>&1)"; then
	case "$out" in
	*"already built"*) ;;
	*)
		echo "$out" >&2
		exit 1
		;;
	esac
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
	for f in fuzz_targets/*.rs; do
		targets+=("$(basename "$f" .rs)")
	done
fi
cargo afl build --release $(printf -- '--bin %s ' "${targets[@]}")

rm -rf out
mkdir -p out
failed=0
for target in "${targets[@]}"; do
	args=(-i "corpus/$target" -o "out/$target" -t 2000 -V "$seconds")
	case "$target" in
	rule_parser) args+=(-x rule.dict -a text -G 4096) ;;
	path_normaliser | manifests | head_check | retry_expression) args+=(-a text -G 8192) ;;
	*) args+=(-G 65536) ;;
	esac
	status=0
	# -V counts fuzzing time only; `timeout` bounds calibration and start-up on top of it.
	AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 \
		timeout "$((seconds + 120))" \
		cargo afl fuzz "${args[@]}" "$CARGO_TARGET_DIR/release/$target" >"afl-$target.log" 2>&1 || status=$?
	if [ "$status" -ne 0 ] && [ "$status" -ne 124 ]; then
		tail -n 30 "afl-$target.log" >&2
		echo "run.sh: afl-fuzz failed on $target (exit $status); its output is in $here/afl-$target.log" >&2
		failed=1
		continue
	fi
	stats="out/$target/default/fuzzer_stats"
	if [ -f "$stats" ]; then
		echo "== $target"
		grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs) ' "$stats" || true
	fi
	crashes="$(find "out/$target/default/crashes" -type f ! -name README.txt 2>/dev/null | wc -l)"
	if [ "$crashes" -ne 0 ]; then
		echo "run.sh: $crashes crash(es) in $here/out/$target/default/crashes/" >&2
		failed=1
	else
		echo "run.sh: $target: no crash in ${seconds}s of fuzzing"
	fi
done
exit "$failed"
