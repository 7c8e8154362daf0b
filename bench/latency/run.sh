#!/bin/sh
# The whole latency measurement in one command, from the repository's root:
#   bench/latency/run.sh [millis_latency options...]      e.g. --seconds 20 --runs 50
# Builds the server and the program if needed, makes a throw-away self-signed EC
# certificate for 127.0.0.1, starts two millis_loadservers (ws:// and wss://), runs
# millis_latency against them and stops them. The JSON goes to stdout.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SERVER=$ROOT/bench/server/millis_loadserver
PROG=${MILLIS_LATENCY:-$ROOT/build/bench/millis_latency}
make -s -C "$ROOT/bench/server" millis_loadserver >&2
make -s -C "$ROOT/bench/latency" OUT="$(dirname "$PROG")" >&2

TMP=$(mktemp -d)
WS_PID= WSS_PID=
cleanup() {
    for p in $WS_PID $WSS_PID; do kill "$p" 2>/dev/null || true; done
    for p in $WS_PID $WSS_PID; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null

# --batch-us 0: the server's batching would add up to 1 ms to every number here.
# --turn-ms 1000 --answer-ms 1000: agent audio flows (nearly) all the time, so the
# incoming direction gets as many samples as the outgoing one.
"$SERVER" --port 0 --stamped --batch-us 0 --turn-ms 1000 --answer-ms 1000 --quiet \
    --stats "$TMP/ws.json" >"$TMP/ws.out" &
WS_PID=$!
"$SERVER" --port 0 --stamped --batch-us 0 --quiet --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem" \
    --stats "$TMP/wss.json" >"$TMP/wss.out" &
WSS_PID=$!

ready_url() {   # the URL of a server's READY line, waiting up to 5 s
    i=0
    while [ $i -lt 100 ]; do
        if [ -s "$1" ]; then awk '/^MILLIS_LOADSERVER_READY/ {print $2}' "$1"; return 0; fi
        sleep 0.05; i=$((i + 1))
    done
    echo "run.sh: no READY line in $1" >&2; return 1
}
WS_URL=$(ready_url "$TMP/ws.out")
WSS_URL=$(ready_url "$TMP/wss.out")

"$PROG" --url "$WS_URL" --server-pid "$WS_PID" --server-stats "$TMP/ws.json" \
    --wss-url "$WSS_URL" --ca-file "$TMP/cert.pem" --wss-server-pid "$WSS_PID" \
    --wss-server-stats "$TMP/wss.json" "$@"
