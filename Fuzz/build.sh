#!/usr/bin/env bash
# Builds the libFuzzer binaries: build/fuzz/<target> for each target named (default: all).
# MillisCore's sources, the shared harness and Fuzz/<target>.swift are compiled as one
# module (MillisCore) with swiftc -sanitize=fuzzer,address; the C shims are compiled
# with clang and linked in. SwiftPM is not involved, so Package.swift stays untouched.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${FUZZ_BUILD_DIR:-$ROOT/build/fuzz}"
SWIFTC="${SWIFTC:-swiftc}"
CLANG="${CLANG:-clang}"
SANITIZERS="${FUZZ_SANITIZERS:-fuzzer,address}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(websocket server_message)

mkdir -p "$OUT/obj"
# The C shims get AddressSanitizer when the Swift code does (FUZZ_SANITIZERS=fuzzer builds
# a faster target for long runs that look for traps, not memory errors).
CSAN=()
[[ ",$SANITIZERS," == *",address,"* ]] && CSAN=(-fsanitize=address)
# The shims: no coverage needed, but ASan so that their memory is checked too.
"$CLANG" -O1 -g "${CSAN[@]}" -c "$ROOT/Sources/CSystem/csystem.c" \
    -I "$ROOT/Sources/CSystem/include" -o "$OUT/obj/csystem.o"
"$CLANG" -O1 -g "${CSAN[@]}" -c "$ROOT/Sources/CCurl/ccurl.c" \
    -I "$ROOT/Sources/CCurl/include" -o "$OUT/obj/ccurl.o"
"$CLANG" -O1 -g "${CSAN[@]}" -c "$ROOT/Sources/CAudio/caudio.c" \
    -I "$ROOT/Sources/CAudio/include" -o "$OUT/obj/caudio.o"
"$CLANG" -O1 -g "${CSAN[@]}" -x c++ -c "$ROOT/Sources/CWebRTCAudio/cwebrtc_audio.cpp" \
    -I "$ROOT/Sources/CWebRTCAudio/include" -I /usr/include/webrtc_audio_processing \
    -DWEBRTC_AUDIO_PROCESSING_ONLY_BUILD -DWEBRTC_POSIX -o "$OUT/obj/cwebrtc_audio.o"
"$CLANG" -O1 -g "${CSAN[@]}" -c "$ROOT/Sources/COpus/copus.c" -I /usr/include/opus \
    -I "$ROOT/Sources/COpus/include" -o "$OUT/obj/copus.o"

mapfile -t core < <(find "$ROOT/Sources/MillisCore" -name '*.swift' | sort)
for target in "${targets[@]}"; do
    entry="$ROOT/Fuzz/$target.swift"
    [ -f "$entry" ] || { echo "no fuzz target $entry" >&2; exit 2; }
    echo "building $OUT/$target"
    "$SWIFTC" -sanitize="$SANITIZERS" -parse-as-library -O -wmo -g -use-ld=lld \
        -module-name MillisCore -D MILLIS_FUZZ_BUILD \
        -I "$ROOT/Fuzz/modulemaps/CCurl" -I "$ROOT/Fuzz/modulemaps/CSystem" \
        -I "$ROOT/Fuzz/modulemaps/CAudio" -I "$ROOT/Fuzz/modulemaps/CWebRTCAudio" \
        -I "$ROOT/Fuzz/modulemaps/COpus" \
        -I "$ROOT/Fuzz/modulemaps/CMillisHeader" -Xcc -I/usr/include/opus \
        "${core[@]}" "$ROOT/Tests/MillisCoreTests/Fuzz/FuzzHarness.swift" "$entry" \
        "$OUT/obj/csystem.o" "$OUT/obj/ccurl.o" "$OUT/obj/caudio.o" "$OUT/obj/cwebrtc_audio.o" \
        "$OUT/obj/copus.o" -lcurl -lspeexdsp -lwebrtc_audio_processing -lstdc++ -lopusenc -lopusfile -lopus \
        -module-cache-path "$OUT/module-cache" -o "$OUT/$target"
done
