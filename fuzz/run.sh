#!/usr/bin/env bash
# Fuzzes the rule parser with AFL++ (cargo-afl, stable Rust) for SECONDS seconds of fuzzing
# (default 60), then fails if AFL recorded any crash. Installs cargo-afl when missing; cargo-afl
# builds its own AFL++ (afl-fuzz included) from the source it ships, so no system AFL is needed.
#
#   fuzz/run.sh 30          # findings, if any, land in fuzz/out/default/crashes/
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
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

cargo afl build --release --bin rule_parser

rm -rf out
status=0
# -V counts fuzzing time only; `timeout` bounds calibration and start-up on top of it.
AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 \
	timeout "$((seconds + 120))" \
	cargo afl fuzz -i corpus/rule_parser -o out -x rule.dict -a text -G 4096 -t 2000 -V "$seconds" \
	"$CARGO_TARGET_DIR/release/rule_parser" >afl.log 2>&1 || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 124 ]; then
	tail -n 30 afl.log >&2
	echo "run.sh: afl-fuzz failed (exit $status); its output is in $here/afl.log" >&2
	exit "$status"
fi

stats=out/default/fuzzer_stats
if [ -f "$stats" ]; then
	grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs) ' "$stats" || true
fi
crashes="$(find out/default/crashes -type f ! -name README.txt 2>/dev/null | wc -l)"
if [ "$crashes" -ne 0 ]; then
	echo "run.sh: $crashes crash(es) in $here/out/default/crashes/" >&2
	exit 1
fi
echo "run.sh: no crash in ${seconds}s of fuzzing"
