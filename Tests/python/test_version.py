"""Version checks, and the binding's declarations against the header."""

from __future__ import annotations

import re


def _header(repo_root) -> str:
    return (repo_root / "include" / "millis.h").read_text()


def _define(text: str, name: str) -> str:
    m = re.search(rf"^#define\s+{name}\s+(.+?)\s*$", text, re.M)
    assert m, f"{name} not in millis.h"
    return m.group(1)


def _version_parts(header: str) -> tuple:
    """MAJOR, MINOR, PATCH: the one place the version is written (NUMBER and STRING
    are made from them by the preprocessor)."""
    return tuple(int(_define(header, f"MILLIS_VERSION_{p}")) for p in ("MAJOR", "MINOR", "PATCH"))


def test_version_number_matches_header(millis, repo_root):
    major, minor, patch = _version_parts(_header(repo_root))
    number = major * 1_000_000 + minor * 1000 + patch
    assert millis.version_number() == number
    assert millis.BINDING_VERSION_NUMBER == number


def test_version_string_matches_header(millis, repo_root):
    assert millis.version() == ".".join(map(str, _version_parts(_header(repo_root))))
    assert millis.version() == millis.__version__


def _header_functions(text: str) -> set:
    body = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    body = re.sub(r"typedef[^;]*;", "", body)
    return set(re.findall(r"\b(millis_[a-z0-9_]+)\s*\(", body))


def test_binding_declares_every_header_function(millis, repo_root):
    declared = set(millis._native.FUNCTIONS)
    in_header = _header_functions(_header(repo_root))
    assert len(in_header) > 40
    assert in_header == declared, {
        "in the header, not declared": sorted(in_header - declared),
        "declared, not in the header": sorted(declared - in_header)}
    for name in declared:
        fn = getattr(millis._native.lib, name)
        assert fn.argtypes is not None, name


def test_enums_match_header(millis, repo_root):
    header = _header(repo_root)
    for enum, prefix in ((millis.Status, "MILLIS_ERR_"), (millis.AgentState, "MILLIS_AGENT_"),
                         (millis.ConnectionState, "MILLIS_CONNECTION_"),
                         (millis.LogLevel, "MILLIS_LOG_"), (millis.AudioMode, "MILLIS_AUDIO_MODE_")):
        found = {m.group(1): int(m.group(2))
                 for m in re.finditer(rf"\b{prefix}([A-Z_]+)\s*=\s*(\d+)", header)}
        expected = {k: v for k, v in found.items()}
        if enum is millis.Status:
            expected["OK"] = 0
        assert {m.name: int(m) for m in enum} == expected, enum


def test_status_strings(millis):
    assert millis.status_string(millis.Status.OK)
    err = millis.MillisError(millis.Status.INVALID_JSON, "")
    assert err.status == 2 and err.name == "INVALID_JSON" and err.message
    assert "INVALID_JSON" in str(err)


def test_event_types_follow_the_event_names(millis, repo_root):
    """millis_event_type numbers the events in the binding's EVENTS order (the binding
    reads an event's name as EVENTS[type - 1]); ANALYZER and USER_AUDIO_READY are the web
    SDK's analyzer and useraudioready, whose older names are aliases."""
    header = _header(repo_root)
    found = {int(m.group(2)): m.group(1)
             for m in re.finditer(r"\bMILLIS_EVENT_([A-Z_]+)\s*=\s*(\d+)", header)}
    assert found.pop(0) == "NONE"
    assert sorted(found) == list(range(1, len(millis.EVENTS) + 1))
    for number, name in found.items():
        ours = millis.EVENTS[number - 1]
        assert millis.ALIASES.get("on" + ours, ours) == ours
        assert "on" + name.lower().replace("_", "") in (ours, "on" + ours), (number, name)
