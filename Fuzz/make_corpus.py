#!/usr/bin/env python3
"""Writes the committed seed corpus, Fuzz/corpus/<target>/<name>: small valid and nearly
valid inputs in each target's input layout (see Tests/MillisCoreTests/Fuzz/FuzzHarness.swift).
The server messages are the ones the devserver sends, as PROTOCOL notes in README.md and
devserver/README.md describe them. Rerun after changing the layout; the files are committed."""

from __future__ import annotations

import json
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "corpus"

# Messages as devserver/millis_devserver.py sends them (json.dumps, so ", " and ": ").
MESSAGES = [
    {"method": "onready", "payload": {"session_id": "1a20eca6d3594ca498698696192f699e"}},
    {"method": "ontranscript", "data": "Hello, what is", "payload": {"is_final": False}},
    {"method": "ontranscript", "data": "Hello, what is the weather like today?", "payload": {"is_final": True}},
    {"method": "start_answering"},
    {"method": "onresponsetext", "data": "It's sunny and twenty two degrees in Paris.", "payload": {"is_final": True}},
    {"method": "onfunction", "data": "", "payload": {"name": "get_weather", "params": {"city": "Paris"}}},
    {"method": "pause"},
    {"method": "unpause"},
    {"method": "clear"},
    {"method": "pong", "data": "1234.567"},
    {"method": "pong", "data": 1234.567},
    {"method": "onsessionended"},
    {"method": "ai_action", "data": {"action": "wave"}, "payload": {"x": 1}},
]


def frame(opcode: int, payload: bytes, fin: bool = True, long127: bool = False, mask: bytes | None = None) -> bytes:
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if long127:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    elif n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        head += mask
    return head + payload


def text(s: str, **kw) -> bytes:
    return frame(0x1, s.encode(), **kw)


def close(code: int, reason: str = "") -> bytes:
    return frame(0x8, struct.pack(">H", code) + reason.encode())


HEAD_101 = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: @@ACCEPT@@\r\n\r\n")

# flags: bit0 raw handshake, bits1-2 max size (64, 1 KiB, 64 KiB, 1 MiB), bit3 send pings,
# bit4 close at the end. chunking: 0 one read, n reads of 1..n+1 bytes.
MAX_1MIB, MAX_64K, MAX_1K, MAX_64 = 6, 4, 2, 0
websocket = {
    "text_binary_whole": (MAX_1MIB, 0, text("hi") + frame(0x2, b"\x07")),
    "text_binary_chunked": (MAX_1MIB, 3, text("hi") + frame(0x2, b"\x07")),
    "fragmented_with_ping": (MAX_1MIB, 5, frame(0x1, b"he", fin=False) + frame(0x9, b"P")
                             + frame(0x0, b"l", fin=False) + frame(0x0, b"lo") + close(1000, "bye")),
    "onready_message": (MAX_1MIB, 0, text(json.dumps(MESSAGES[0]))),
    "conversation": (MAX_64K, 17, b"".join(text(json.dumps(m)) for m in MESSAGES[:6])
                     + frame(0x2, bytes(range(256)) * 3) + close(1000, "session ended")),
    "binary_126": (MAX_1K, 7, frame(0x2, bytes(200))),
    "binary_127": (MAX_64K, 40, frame(0x2, bytes(300), long127=True)),
    "too_big": (MAX_64, 0, frame(0x2, bytes(100))),
    "too_big_fragments": (MAX_64, 2, frame(0x2, bytes(40), fin=False) + frame(0x0, bytes(40))),
    "masked": (MAX_1MIB, 0, frame(0x1, b"abc", mask=b"\x01\x02\x03\x04")),
    "reserved_bits": (MAX_1MIB, 0, bytes([0xC1, 0x01, 0x41])),
    "reserved_opcode": (MAX_1MIB, 0, bytes([0x83, 0x00])),
    "long_ping": (MAX_1MIB, 0, frame(0x9, bytes(126))),
    "fragmented_ping": (MAX_1MIB, 0, frame(0x9, b"x", fin=False)),
    "bad_utf8": (MAX_1MIB, 1, frame(0x1, b"\xff\xfe")),
    "split_utf8": (MAX_1MIB, 1, frame(0x1, "é€".encode()[:2], fin=False) + frame(0x0, "é€".encode()[2:])),
    "close_no_code": (MAX_1MIB, 0, frame(0x8, b"")),
    "close_1_byte": (MAX_1MIB, 0, frame(0x8, b"\x03")),
    "close_bad_code": (MAX_1MIB, 0, close(1005)),
    "close_4000": (MAX_1MIB, 0, close(4000, "agent error")),
    "close_bad_reason": (MAX_1MIB, 0, frame(0x8, b"\x03\xe8\xff")),
    "continuation_alone": (MAX_1MIB, 0, frame(0x0, b"x")),
    "nested_message": (MAX_1MIB, 0, frame(0x1, b"a", fin=False) + text("b")),
    "pings_then_close_ours": (MAX_1MIB | 8 | 16, 9, frame(0x9, b"") * 5 + frame(0xA, b"p") + text("x")),
    "raw_101": (1 | MAX_1MIB, 11, HEAD_101 + text("hello")),
    "raw_101_header_case": (1 | MAX_1MIB, 0, b"HTTP/1.1 101 OK\r\nupgrade:  WebSocket \r\nCONNECTION: keep-alive, Upgrade\r\n"
                            b"sec-websocket-accept:@@ACCEPT@@\r\nServer: x\r\n\r\n" + frame(0x2, b"ab")),
    "raw_403": (1 | MAX_1MIB, 0, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
    "raw_bad_accept": (1 | MAX_1MIB, 0, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n\r\n"),
    "raw_extension": (1 | MAX_1MIB, 0, HEAD_101[:-2] + b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
    "raw_garbage_status": (1 | MAX_1MIB, 0, b"HTTP/1.1 1O1\r\n\r\n"),
    "raw_partial": (1 | MAX_1MIB, 1, HEAD_101[:40]),
}

sep = b"\x00"
audio = b"\x01" + bytes(640)
server_message = {f"message_{i:02d}_{m['method']}": json.dumps(m).encode() for i, m in enumerate(MESSAGES)}
server_message.update({
    "compact_onready": b'{"method":"onready","payload":{"session_id":"S1"}}',
    "turn": sep.join([json.dumps(MESSAGES[i]).encode() for i in (1, 2, 3)] + [audio]
                     + [json.dumps(MESSAGES[i]).encode() for i in (4, 5, 6)] + [b"\x01" + bytes(320)]
                     + [json.dumps(MESSAGES[i]).encode() for i in (7, 8, 9, 11)]),
    "odd_audio": sep.join([json.dumps(MESSAGES[3]).encode(), b"\x01" + bytes(641)]),
    "pause_audio_unpause": sep.join([b'{"method":"pause"}', b"\x01" + bytes(64), b'{"method":"unpause"}']),
    "malformed_unterminated": b'{"method": "ontranscript", "data": "unterminated',
    "malformed_utf8": b'{"method":"ontranscript","data":"\xff\xfe"}',
    "no_method": b'{"data": "x"}',
    "method_not_string": b'{"method": 7}',
    "not_object": b'[1, 2.5e-3, -0, true, false, null, "s"]',
    "escapes": b'{"method":"ontranscript","data":"\\u00e9\\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t","payload":{"is_final":true}}',
    "bad_surrogate": b'{"method":"ontranscript","data":"\\ud83d x"}',
    "numbers": b'{"method":"pong","data":-12.5E+3,"payload":{"a":[0,1e9,1.0e-9,123456789012345678901234567890]}}',
    "deep": b"[" * 200 + b"]" * 200,
    "too_deep": b"[" * 300 + b"]" * 300,
    "duplicate_keys": b'{"method":"clear","method":"pause","payload":{"is_final":1}}',
    "whitespace": b' \t\r\n{ "method" : "clear" } \n',
})


# Issue 12: server values that once reached a trapping conversion. A pong's data became
# the ping RTT, whose stats JSON did Int(rtt * 1000): NaN, infinities and huge values
# trapped. Raw bytes, since json.dumps cannot write 1e999 and would quote the others.
PONG_TRAPS = {
    "pong_data_nan_string": b'{"method":"pong","data":"nan"}',
    "pong_data_1e999_string": b'{"method":"pong","data":"1e999"}',
    "pong_data_1e999_number": b'{"method":"pong","data":1e999}',
    "pong_data_epoch_ns_string": b'{"method":"pong","data":"1700000000000000000"}',
    "pong_data_minus_1e308": b'{"method":"pong","data":-1e308}',
    "pong_data_minus_inf_string": b'{"method":"pong","data":"-inf"}',
}
server_message.update(PONG_TRAPS)
server_message["pong_all_traps"] = sep.join(PONG_TRAPS.values())


def onready(session_id) -> bytes:
    return json.dumps({"method": "onready", "payload": {"session_id": session_id}}).encode()


# A session id of every JSON type, and strings meant to break escaping: the fuzz target
# makes an open session ready with it, then reconnects (initiate continues it).
WEIRD = "\x00\x01\x1f\"\\/\b\f\n\r\t\x7f\u0080\u00ad\u2028\u2029\ufeff\ufffe\uffff\U0001f600\U0010ffff e\u0301"
LONG_ID = ("S-" + WEIRD + "abcdefghij" * 40) * 20
assert len(json.dumps(LONG_ID)) > 10_000
server_message.update({
    "onready_session_id_number": onready(12345),
    "onready_session_id_object": onready({"a": [1]}),
    "onready_session_id_null": onready(None),
    "onready_session_id_empty": onready(""),
    "onready_session_id_weird": onready(WEIRD),
    "onready_session_id_weird_raw": json.dumps({"method": "onready", "payload": {"session_id": WEIRD}},
                                               ensure_ascii=False).encode(),
    "onready_session_id_10k": onready(LONG_ID),
    "onready_weird_then_turn": sep.join([onready(WEIRD), json.dumps(MESSAGES[3]).encode(), b"\x01" + bytes(641),
                                         json.dumps(MESSAGES[4]).encode(), b'{"method":"clear"}',
                                         onready("second"), b'{"method":"pong","data":"1234.5"}']),
    "onready_payload_not_object": b'{"method":"onready","payload":[1,2]}',
})

# Text messages whose data and is_final are of every JSON type.
DATA_TYPES = ["text", "", 1, -1.5e3, True, False, None, [], {}, [1, "a"], {"a": 1}]
FINAL_TYPES = {"true_string": "true", "one": 1, "zero": 0, "empty_string": "", "null": None, "empty_array": [],
               "true": True, "false": False}
for method in ("ontranscript", "onresponsetext", "onfunction"):
    for name, final in FINAL_TYPES.items():
        server_message[f"{method}_is_final_{name}"] = sep.join(
            json.dumps({"method": method, "data": d, "payload": {"is_final": final, "name": d, "params": d}}).encode()
            for d in DATA_TYPES)

# Agent audio frames of odd and unusual lengths, in and out of an answer and a pause.
server_message.update({
    "audio_odd_lengths": sep.join([b"\x01" + bytes(n) for n in (1, 3, 5, 641, 4095)]),
    "audio_empty_frame": sep.join([json.dumps(MESSAGES[3]).encode(), b"\x01", b"\x01" + bytes(2)]),
    "audio_odd_in_answer_and_pause": sep.join([json.dumps(MESSAGES[3]).encode(), b"\x01" + b"\x7f" * 321,
                                                b'{"method":"pause"}', b"\x01" + b"\x80" * 999,
                                                b'{"method":"unpause"}', b"\x01" + b"\xff" * 7,
                                                b'{"method":"clear"}', b"\x01" + b"\x00\x80" * 800 + b"\x01"]),
    "audio_full_scale": sep.join([b"\x01" + (b"\xff\x7f\x00\x80" * 2000)]),
})

# The regressions replayed before fuzzing and by FuzzRegressionTests.
REGRESSIONS = {"server_message": dict(PONG_TRAPS)}


def main() -> None:
    for target, items in (("websocket", websocket), ("server_message", server_message)):
        d = ROOT / target
        d.mkdir(parents=True, exist_ok=True)
        for name, value in items.items():
            if target == "websocket":
                flags, chunking, body = value
                value = bytes([flags, chunking]) + body
            (d / name).write_bytes(value)
        print(f"{d}: {len(items)} files")
    for target, items in REGRESSIONS.items():
        d = ROOT.parent / "regressions" / target
        d.mkdir(parents=True, exist_ok=True)
        for name, value in items.items():
            (d / name).write_bytes(value)
        print(f"{d}: {len(items)} files")


if __name__ == "__main__":
    main()
