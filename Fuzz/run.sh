#!/usr/bin/env bash
# Runs the fuzz targets built by Fuzz/build.sh.
#   Fuzz/run.sh smoke [target...]  bounded, deterministic run over the seed corpus
#                                  (FUZZ_RUNS executions each, default 100000, seed 1;
#                                  FUZZ_RUNS_SERVER_MESSAGE for server_message);
#                                  new inputs go to a scratch dir that is thrown away.
#   Fuzz/run.sh long [target...]   FUZZ_SECONDS each (default 600), growing the corpus in
#                                  FUZZ_CORPUS_DIR/<target> (default build/fuzz/corpus).
# Crash inputs land in build/fuzz/artifacts/<target>/. Exits non-zero if any target found
# a crash, a timeout (a hang: FUZZ_TIMEOUT s per input, default 10) or ran out of memory
# (FUZZ_RSS_MB, default 2048).
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}"
mode="${1:-smoke}"; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(websocket server_message)
common=(-timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -max_len="${FUZZ_MAX_LEN:-8192}"
        -print_final_stats=1)
# ASan: leaks are real findings too (libFuzzer checks them per input).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
export PATH="$PATH:/opt/swift/usr/bin"  # llvm-symbolizer for readable stacks

status=0
for target in "${targets[@]}"; do
    exe="$OUT/$target"
    [ -x "$exe" ] || { echo "$exe missing: run Fuzz/build.sh (make fuzz-build)" >&2; exit 2; }
    artifacts="$OUT/artifacts/$target"
    mkdir -p "$artifacts"
    case "$mode" in
    smoke)
        scratch="$(mktemp -d "$OUT/smoke-$target.XXXXXX")"
        runs="${FUZZ_RUNS:-100000}"
        # server_message plays each input to three sessions and everything after them
        # (about 330 inputs a second against websocket's 6600): its own count.
        [ "$target" = server_message ] && runs="${FUZZ_RUNS_SERVER_MESSAGE:-$runs}"
        args=(-runs="$runs" -seed="${FUZZ_SEED:-1}" "$scratch" "$ROOT/Fuzz/corpus/$target")
        ;;
    long)
        corpus="${FUZZ_CORPUS_DIR:-$OUT/corpus}/$target"
        mkdir -p "$corpus"
        args=(-max_total_time="${FUZZ_SECONDS:-600}" "$corpus" "$ROOT/Fuzz/corpus/$target")
        ;;
    *) echo "usage: $0 smoke|long [target...]" >&2; exit 2 ;;
    esac
    # The regressions are replayed first: each must pass.
    regressions=()
    for f in "$ROOT/Fuzz/regressions/$target"/*; do
        [ -f "$f" ] && [[ "$f" != *.md ]] && regressions+=("$f")
    done
    log="$OUT/$mode-$target.log"
    start=$SECONDS
    if [ ${#regressions[@]} -gt 0 ]; then
        "$exe" "${common[@]}" "${regressions[@]}" >"$log.regressions" 2>&1 \
            || { echo "FAIL $target: a regression input crashes again:"; tail -n 60 "$log.regressions"; status=1; continue; }
    fi
    if "$exe" "${common[@]}" -artifact_prefix="$artifacts/" "${args[@]}" >"$log" 2>&1; then
        echo "ok   $target ($mode, $((SECONDS - start)) s): $(grep -m1 -o 'Done [0-9]* runs.*' "$log" || tail -n 1 "$log")"
    else
        echo "FAIL $target ($mode): see $log; crash input in $artifacts/"
        grep -m1 -B2 -A40 'ERROR: \|Fatal error\|==ERROR\|deadly signal\|timeout after\|out-of-memory' "$log" || tail -n 60 "$log"
        status=1
    fi
    [ "$mode" = smoke ] && rm -rf "$scratch"
done
exit $status
