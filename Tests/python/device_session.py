#!/usr/bin/env python3
"""Holds one device-audio conversation in a process of its own and prints a JSON
summary (events with times, stats, the stream description) on stdout.

The audio tests run it as a child so that each gets its own ALSA configuration
(ALSA_CONFIG_PATH, PulseAudio variables) in its environment; plain ctypes keeps it
independent of the Python binding under test elsewhere.

    device_session.py --library build/libmillis.so --endpoint ws://... \\
        --capture cap --playback play --seconds 8 [--processing 0|1] \\
        [--echo-canceller webrtc|speex] \\
        [--agent-audio FILE] [--prebuffer-ms N] [--stop-after-session-ended]
"""
import argparse
import ctypes as C
import json
import sys
import threading
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--library", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--capture", default="default")
    ap.add_argument("--playback", default="default")
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--processing", type=int, default=1)
    ap.add_argument("--echo-canceller", choices=["webrtc", "speex"], help="the library's default when not given")
    ap.add_argument("--agent-audio", help="write the agent audio of the audio callback here")
    ap.add_argument("--prebuffer-ms", type=int)
    ap.add_argument("--agent", default="demo-agent")
    ap.add_argument("--stall-after-frames", type=int, default=0,
                    help="block the network thread once, in the audio callback, after this many agent frames")
    ap.add_argument("--stall-ms", type=int, default=0)
    args = ap.parse_args()

    lib = C.CDLL(args.library)
    vp, cp, i = C.c_void_p, C.c_char_p, C.c_int
    lib.millis_config_create.restype = vp
    lib.millis_client_create.restype = vp
    lib.millis_client_create.argtypes = [vp, C.POINTER(i)]
    lib.millis_client_stats_json.restype = vp
    lib.millis_client_stats_json.argtypes = [vp]
    lib.millis_free.argtypes = [vp]
    lib.millis_client_last_error.restype = cp
    lib.millis_client_last_error.argtypes = [vp]
    lib.millis_config_last_error.restype = cp
    lib.millis_config_last_error.argtypes = [vp]
    for name in ("millis_config_set_public_key", "millis_config_set_endpoint"):
        getattr(lib, name).argtypes = [vp, cp]
    lib.millis_config_set_audio_devices.argtypes = [vp, cp, cp]
    lib.millis_config_set_audio_mode.argtypes = [vp, i]
    lib.millis_config_set_audio_processing.argtypes = [vp, i, i, i]
    lib.millis_config_set_echo_canceller.argtypes = [vp, i]
    lib.millis_config_set_playout_prebuffer_ms.argtypes = [vp, C.c_uint]
    lib.millis_client_start_agent.argtypes = [vp, cp]
    lib.millis_client_stop.argtypes = [vp]
    lib.millis_client_destroy.argtypes = [vp]
    lib.millis_client_audio_mode.argtypes = [vp]

    cfg = vp(lib.millis_config_create())
    assert lib.millis_config_set_public_key(cfg, b"test-public-key") == 0
    assert lib.millis_config_set_endpoint(cfg, args.endpoint.encode()) == 0
    assert lib.millis_config_set_audio_mode(cfg, 2) == 0
    assert lib.millis_config_set_audio_devices(cfg, args.capture.encode(), args.playback.encode()) == 0
    on = args.processing
    assert lib.millis_config_set_audio_processing(cfg, on, on, on) == 0
    if args.echo_canceller is not None:
        assert lib.millis_config_set_echo_canceller(cfg, ["webrtc", "speex"].index(args.echo_canceller)) == 0
    if args.prebuffer_ms is not None:
        assert lib.millis_config_set_playout_prebuffer_ms(cfg, args.prebuffer_ms) == 0
    err = i(0)
    client = vp(lib.millis_client_create(cfg, C.byref(err)))
    if not client:
        print(json.dumps({"create_error": err.value, "message": lib.millis_config_last_error(cfg).decode()}))
        return 1

    t0 = time.monotonic()
    events = []
    agent_audio = bytearray()
    closed = threading.Event()
    lock = threading.Lock()

    def note(kind, **data):
        with lock:
            events.append({"t": round(time.monotonic() - t0, 4), "event": kind, **data})

    STATE = C.CFUNCTYPE(None, vp, i, vp)
    TEXT = C.CFUNCTYPE(None, vp, cp, i, vp)
    ERROR = C.CFUNCTYPE(None, vp, i, cp, vp)
    CLOSE = C.CFUNCTYPE(None, vp, i, cp, vp)
    AUDIO = C.CFUNCTYPE(None, vp, C.POINTER(C.c_uint8), C.c_size_t, vp)
    READY = C.CFUNCTYPE(None, vp, vp, cp, vp)
    PLAIN = C.CFUNCTYPE(None, vp, vp)

    frames = [0]

    def on_audio(c, pcm, n, u):
        agent_audio.extend(C.string_at(pcm, n))
        frames[0] += 1
        if args.stall_ms and frames[0] == args.stall_after_frames:
            # Starves both audio threads' partners on purpose: the playout queue runs
            # dry mid-answer and the microphone ring fills.
            note("stall", ms=args.stall_ms)
            time.sleep(args.stall_ms / 1000)

    def on_close(c, code, reason, u):
        note("close", code=code)
        closed.set()

    keep = [
        STATE(lambda c, s, u: note("agent_state", state=s)),
        TEXT(lambda c, t, f, u: f and note("transcript", text=t.decode())),
        TEXT(lambda c, t, f, u: f and note("response", text=t.decode())),
        ERROR(lambda c, s, m, u: note("error", status=s, message=m.decode())),
        CLOSE(on_close),
        AUDIO(on_audio),
        READY(lambda c, a, j, u: note("user_audio_ready", stream=json.loads(j.decode()))),
        PLAIN(lambda c, u: note("session_ended")),
    ]
    lib.millis_client_on_agent_state(client, keep[0], None)
    lib.millis_client_on_transcript(client, keep[1], None)
    lib.millis_client_on_response_text(client, keep[2], None)
    lib.millis_client_on_error(client, keep[3], None)
    lib.millis_client_on_close(client, keep[4], None)
    lib.millis_client_on_audio(client, keep[5], None)
    lib.millis_client_on_user_audio_ready(client, keep[6], None)
    lib.millis_client_on_session_ended(client, keep[7], None)

    rc = lib.millis_client_start_agent(client, args.agent.encode())
    if rc != 0:
        print(json.dumps({"start_error": rc, "message": lib.millis_client_last_error(client).decode()}))
        lib.millis_client_destroy(client)
        return 1
    closed.wait(args.seconds)
    lib.millis_client_session_id.restype = vp
    lib.millis_client_session_id.argtypes = [vp]
    sid_p = lib.millis_client_session_id(client)
    session_id = C.string_at(sid_p).decode() if sid_p else None
    if sid_p:
        lib.millis_free(sid_p)
    lib.millis_client_stop(client)
    closed.wait(3)
    p = lib.millis_client_stats_json(client)
    stats = json.loads(C.string_at(p).decode())
    lib.millis_free(p)
    mode = lib.millis_client_audio_mode(client)
    lib.millis_client_destroy(client)
    if args.agent_audio:
        with open(args.agent_audio, "wb") as f:
            f.write(agent_audio)
    with lock:
        print(json.dumps({"events": events, "stats": stats, "audio_mode": mode, "session_id": session_id,
                          "agent_audio_bytes": len(agent_audio)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
