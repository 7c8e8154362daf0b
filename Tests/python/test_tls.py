"""wss:// (issue 5): certificate verification, a private CA file, and the insecure
switch, against a second devserver serving TLS with a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import time
from pathlib import Path

import pytest

from millis_testkit import PUBLIC_KEY

QUICK_AUDIO_BYTES = 5 * 640


def _self_signed(directory: Path) -> "tuple[Path, Path]":
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "libmillis test devserver")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory) -> "tuple[Path, Path]":
    return _self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_devserver(devserver_factory, tls_cert):
    cert, key = tls_cert
    server = devserver_factory("--tls-cert", cert, "--tls-key", key)
    assert server.url.startswith("wss://127.0.0.1:"), server.url
    return server


@pytest.fixture
def tls_case(millis, tls_devserver, recorder, process_health):
    made = []

    def make(**client_kw):
        client = millis.Client(PUBLIC_KEY, tls_devserver.url, **client_kw)
        made.append(client)
        return client, recorder(client)

    yield make
    for client in made:
        client.close()


def _quick_conversation(client, rec, tls_devserver) -> dict:
    client.start(agent_id="quick-agent")
    rec.wait_for("onresponsetext", lambda text, p: text == "ok" and p["is_final"], timeout=10)
    assert rec.of("ontranscript") == [("quick", {"is_final": True})]
    time.sleep(0.2)
    assert sum(len(a[0]) for a in rec.of("onaudio")) == QUICK_AUDIO_BYTES
    session_id = rec.of("onready")[0][0]
    client.stop()
    assert client.wait_closed(10)
    assert [code for code, _ in rec.of("onclose")] == [1000], rec.of("onclose")
    assert not rec.of("onerror"), [str(a[0]) for a in rec.of("onerror")]
    record = tls_devserver.record(session_id)
    assert record["close"]["code"] == 1000 and record["close"]["by"] == "client"
    return record


def test_tls_self_signed_refused_by_default(tls_case, tls_devserver, process_health, millis):
    mark = tls_devserver.log_mark()
    client, rec = tls_case()
    client.start(agent_id="quick-agent")
    assert client.wait_closed(10), rec.names()
    errors = [a[0] for a in rec.of("onerror")]
    assert len(errors) == 1 and errors[0].status == millis.Status.TLS, errors
    message = errors[0].message.lower()
    assert "certificate" in message and "verif" in message, (
        f"the TLS error should say that certificate verification failed: {errors[0].message!r}")
    assert [code for code, _ in rec.of("onclose")] == [1006], rec.of("onclose")
    assert not rec.of("onopen") and not rec.of("onready")
    client.close()
    process_health.check()
    tls_devserver.assert_healthy(mark)


def test_tls_ca_file_quick_conversation(tls_case, tls_devserver, tls_cert, process_health):
    mark = tls_devserver.log_mark()
    client, rec = tls_case(ca_file=str(tls_cert[0]))
    _quick_conversation(client, rec, tls_devserver)
    assert not [m for lvl, m in rec.of("onlog") if "insecure" in m.lower()]
    client.close()
    process_health.check()
    tls_devserver.assert_healthy(mark)


def test_tls_verification_disabled_insecure_works_and_warns(tls_case, tls_devserver, process_health, millis):
    mark = tls_devserver.log_mark()
    client, rec = tls_case(tls_verification_disabled_insecure=True, log_level="warn")
    _quick_conversation(client, rec, tls_devserver)
    warnings = [m for lvl, m in rec.of("onlog") if lvl == millis.LogLevel.WARN]
    assert any("insecure" in m.lower() or "verif" in m.lower() for m in warnings), (
        f"no WARN log line about the disabled verification: {rec.of('onlog')}")
    client.close()
    process_health.check()
    tls_devserver.assert_healthy(mark)


def test_tls_missing_ca_file(tls_case, tls_devserver, tmp_path, process_health, millis):
    mark = tls_devserver.log_mark()
    missing = tmp_path / "no-such-ca.pem"
    client, rec = tls_case(ca_file=str(missing))
    client.start(agent_id="quick-agent")
    assert client.wait_closed(10), rec.names()
    errors = [a[0] for a in rec.of("onerror")]
    assert len(errors) == 1 and errors[0].status == millis.Status.TLS, errors
    assert len(rec.of("onclose")) == 1 and rec.names()[-1] == "onclose", rec.names()
    assert not rec.of("onready")
    client.close()
    process_health.check()
    tls_devserver.assert_healthy(mark)
