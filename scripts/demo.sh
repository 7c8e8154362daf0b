#!/usr/bin/env bash
# make demo: builds the C example with nothing but pkg-config, then holds a spoken
# conversation with it. Without MILLIS_PUBLIC_KEY/MILLIS_AGENT_ID it starts the local
# devserver on a free port and talks to that; with them it talks to the real endpoint.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
out=$root/build/demo
mkdir -p "$out"
export PKG_CONFIG_PATH=$root/build/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
cc -std=c99 -O2 -o "$out/millis_example" "$root/bindings/c/millis_example.c" $(pkg-config --cflags --libs millis)

server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

args=(--input "$root/bindings/audio/user.wav" --output "$out/agent.wav")
if [ -n "${MILLIS_PUBLIC_KEY:-}" ] && [ -n "${MILLIS_AGENT_ID:-}" ]; then
  echo "== talking to ${MILLIS_ENDPOINT:-wss://api-west.millis.ai:8080/millis} with agent $MILLIS_AGENT_ID"
  args+=(--agent-id "$MILLIS_AGENT_ID" --endpoint "${MILLIS_ENDPOINT:-wss://api-west.millis.ai:8080/millis}")
else
  echo "== MILLIS_PUBLIC_KEY/MILLIS_AGENT_ID not set: starting the local devserver"
  fifo=$out/devserver.out
  rm -f "$fifo"; mkfifo "$fifo"
  "$py" "$root/devserver/millis_devserver.py" --host 127.0.0.1 --port 0 --record-dir "$out/records" >"$fifo" 2>"$out/devserver.log" &
  server_pid=$!
  read -r -t 20 banner url <"$fifo" || { echo "devserver did not start; see $out/devserver.log" >&2; exit 1; }
  [ "$banner" = MILLIS_DEVSERVER_READY ] || { echo "devserver said: $banner $url" >&2; exit 1; }
  cat "$fifo" >/dev/null &
  echo "== devserver at $url"
  args+=(--endpoint "$url" --agent-id demo-agent)
  export MILLIS_PUBLIC_KEY=test-public-key
fi
"$out/millis_example" "${args[@]}"
echo "== the agent's reply is in $out/agent.wav"
