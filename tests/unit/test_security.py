import asyncio
import logging
import socket
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (GroupAuthorizationFailedError, KafkaConnectionError,
                             SaslAuthenticationFailed, UnsupportedSaslMechanismError)
from cryptography.hazmat.primitives import serialization

from app.security import (Security, aiokafka_kwargs, bootstrap_cause, bootstrap_hosts,
                                explain, faust_settings, probe, ssl_context)
from tests.tls_material import TlsMaterial, make_broker_tls

SECRET = "s3cret-Pa55"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_broker_tls(tmp_path_factory.mktemp("tls"), "keystore-pass")


@pytest.fixture
def sasl_ssl(tls: TlsMaterial) -> Security:
    return Security(protocol="SASL_SSL", mechanism="SCRAM-SHA-512", username="alice",
                    password=SECRET, ca_file=str(tls.ca_pem))


# --- from_env and validate -----------------------------------------------------------------

def test_unset_means_plaintext_and_changes_nothing():
    sec = Security.from_env({})
    assert sec == Security()
    assert aiokafka_kwargs(sec) == {} and faust_settings(sec) == {} and ssl_context(sec) is None


def test_from_env_reads_every_variable_and_the_password_file(tmp_path: Path, tls: TlsMaterial):
    pw_file = tmp_path / "pw"
    pw_file.write_text(SECRET + "\n")
    sec = Security.from_env({
        "ORDERSTATS_SECURITY_PROTOCOL": "sasl_ssl", "ORDERSTATS_SASL_MECHANISM": "scram-sha-256",
        "ORDERSTATS_SASL_USERNAME": "alice", "ORDERSTATS_SASL_PASSWORD_FILE": str(pw_file),
        "ORDERSTATS_SSL_CA_FILE": str(tls.ca_pem), "ORDERSTATS_SSL_CERT_FILE": str(tls.client_cert_pem),
        "ORDERSTATS_SSL_KEY_FILE": str(tls.client_key_pem), "ORDERSTATS_SSL_CHECK_HOSTNAME": "false"})
    assert sec == Security("SASL_SSL", "SCRAM-SHA-256", "alice", SECRET, str(tls.ca_pem),
                           str(tls.client_cert_pem), str(tls.client_key_pem), False)


@pytest.mark.parametrize("env, message", [
    ({"ORDERSTATS_SECURITY_PROTOCOL": "TLS"}, "ORDERSTATS_SECURITY_PROTOCOL='TLS' is not one of"),
    ({"ORDERSTATS_SECURITY_PROTOCOL": "SASL_SSL", "ORDERSTATS_SASL_MECHANISM": "GSSAPI",
      "ORDERSTATS_SASL_USERNAME": "u", "ORDERSTATS_SASL_PASSWORD": SECRET},
     "ORDERSTATS_SASL_MECHANISM='GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    ({"ORDERSTATS_SECURITY_PROTOCOL": "SASL_SSL", "ORDERSTATS_SASL_PASSWORD": SECRET},
     "needs ORDERSTATS_SASL_USERNAME"),
    ({"ORDERSTATS_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "ORDERSTATS_SASL_USERNAME": "u"},
     "needs ORDERSTATS_SASL_PASSWORD or ORDERSTATS_SASL_PASSWORD_FILE"),
    ({"ORDERSTATS_SASL_USERNAME": "u", "ORDERSTATS_SASL_PASSWORD": SECRET},
     "ORDERSTATS_SECURITY_PROTOCOL=PLAINTEXT does not use SASL"),
    ({"ORDERSTATS_SECURITY_PROTOCOL": "SASL_SSL", "ORDERSTATS_SASL_USERNAME": "u",
      "ORDERSTATS_SASL_PASSWORD": SECRET, "ORDERSTATS_SASL_PASSWORD_FILE": "/etc/hostname"},
     "not both"),
    ({"ORDERSTATS_SECURITY_PROTOCOL": "SASL_SSL", "ORDERSTATS_SASL_USERNAME": "u",
      "ORDERSTATS_SASL_PASSWORD_FILE": "/nonexistent/pw"},
     "ORDERSTATS_SASL_PASSWORD_FILE=/nonexistent/pw: no such file"),
    ({"ORDERSTATS_SECURITY_PROTOCOL": "SSL", "ORDERSTATS_SSL_CA_FILE": "/nonexistent/ca.pem"},
     "ORDERSTATS_SSL_CA_FILE=/nonexistent/ca.pem: no such file"),
    ({"ORDERSTATS_SECURITY_PROTOCOL": "SSL", "ORDERSTATS_SSL_CERT_FILE": "/nonexistent/c.pem"},
     "ORDERSTATS_SSL_CERT_FILE=/nonexistent/c.pem: no such file"),
    ({"ORDERSTATS_SSL_CA_FILE": "/etc/hostname"}, "ORDERSTATS_SSL_CA_FILE is set but "
     "ORDERSTATS_SECURITY_PROTOCOL=PLAINTEXT does not use TLS"),
    ({"ORDERSTATS_SECURITY_PROTOCOL": "SSL", "ORDERSTATS_SSL_KEY_FILE": "/etc/hostname"},
     "ORDERSTATS_SSL_KEY_FILE needs ORDERSTATS_SSL_CERT_FILE"),
    ({"ORDERSTATS_SSL_CHECK_HOSTNAME": "maybe"}, "ORDERSTATS_SSL_CHECK_HOSTNAME='maybe'"),
])
def test_bad_settings_are_refused_naming_the_variable(env, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as info:
        Security.from_env(env)
    assert SECRET not in str(info.value)


def test_an_empty_password_file_is_refused(tmp_path: Path):
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(ValueError, match="ORDERSTATS_SASL_PASSWORD_FILE=.* is empty"):
        Security.from_env({"ORDERSTATS_SECURITY_PROTOCOL": "SASL_SSL",
                           "ORDERSTATS_SASL_USERNAME": "u",
                           "ORDERSTATS_SASL_PASSWORD_FILE": str(tmp_path / "pw")})


def test_repr_and_str_never_show_the_password(sasl_ssl: Security):
    assert SECRET not in repr(sasl_ssl) and SECRET not in str(sasl_ssl)
    assert "alice" in repr(sasl_ssl)
    assert SECRET not in repr(faust_settings(sasl_ssl))


# --- TLS context -----------------------------------------------------------------------------

def test_ssl_context_trusts_only_the_ca_file_and_checks_host_names(sasl_ssl: Security):
    ctx = ssl_context(sasl_ssl)
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert [c["subject"] for c in ctx.get_ca_certs()] == [
        ((("organizationName", "orderstats tests"),), (("commonName", "orderstats test CA"),))]
    unchecked = ssl_context(replace(sasl_ssl, check_hostname=False))
    assert not unchecked.check_hostname and unchecked.verify_mode == ssl.CERT_REQUIRED


def test_ssl_context_without_a_ca_file_uses_the_system_cas():
    ctx = ssl_context(Security(protocol="SSL"))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_ssl_context_loads_a_client_certificate(sasl_ssl: Security, tls: TlsMaterial):
    ssl_context(replace(sasl_ssl, cert_file=str(tls.client_cert_pem), key_file=str(tls.client_key_pem)))


def test_unusable_tls_files_give_one_clear_error(tmp_path: Path, sasl_ssl: Security,
                                                 tls: TlsMaterial):
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    with pytest.raises(ValueError, match="ORDERSTATS_SSL_CA_FILE=.*no PEM certificate"):
        ssl_context(replace(sasl_ssl, ca_file=str(not_pem)))
    # The broker's CA cert with the client's key: not a pair.
    with pytest.raises(ValueError, match="ORDERSTATS_SSL_CERT_FILE=.*ORDERSTATS_SSL_KEY_FILE="):
        ssl_context(replace(sasl_ssl, cert_file=str(tls.ca_pem), key_file=str(tls.client_key_pem)))


def test_an_encrypted_client_key_is_refused_without_prompting(tmp_path: Path, sasl_ssl: Security,
                                                              tls: TlsMaterial):
    key = serialization.load_pem_private_key(tls.client_key_pem.read_bytes(), None)
    encrypted = tmp_path / "key.pem"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"pw")))
    with pytest.raises(ValueError, match="encrypted"):
        ssl_context(replace(sasl_ssl, cert_file=str(tls.client_cert_pem), key_file=str(encrypted)))


# --- client keyword arguments ------------------------------------------------------------------

def test_aiokafka_kwargs_for_each_protocol(sasl_ssl: Security):
    kw = aiokafka_kwargs(sasl_ssl)
    assert set(kw) == {"security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username",
                       "sasl_plain_password"}
    assert (kw["security_protocol"], kw["sasl_mechanism"], kw["sasl_plain_username"],
            kw["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "alice", SECRET)
    assert isinstance(kw["ssl_context"], ssl.SSLContext)
    plain = aiokafka_kwargs(replace(sasl_ssl, protocol="SASL_PLAINTEXT", ca_file=""))
    assert "ssl_context" not in plain and plain["security_protocol"] == "SASL_PLAINTEXT"
    tls_only = aiokafka_kwargs(replace(sasl_ssl, protocol="SSL", username="", password=""))
    assert set(tls_only) == {"security_protocol", "ssl_context"}


def test_aiokafka_clients_accept_the_kwargs(sasl_ssl: Security):
    async def build() -> None:  # the constructors check the names and combinations
        for sec in (sasl_ssl, replace(sasl_ssl, protocol="SSL", username="", password="")):
            kw = aiokafka_kwargs(sec)
            producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **kw)
            await producer.stop()
            consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", **kw)
            await consumer.stop()
            admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:1", **kw)
            await admin.close()

    asyncio.run(build())


def test_faust_credentials_map_to_the_same_client_settings(sasl_ssl: Security):
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    for sec in (sasl_ssl, replace(sasl_ssl, mechanism="SCRAM-SHA-256"),
                replace(sasl_ssl, protocol="SASL_PLAINTEXT", mechanism="PLAIN", ca_file=""),
                replace(sasl_ssl, protocol="SSL", username="", password="")):
        auth = credentials_to_aiokafka_auth(faust_settings(sec)["broker_credentials"])
        ours = aiokafka_kwargs(sec)
        assert {k: v for k, v in auth.items() if k != "ssl_context" and v is not None} == {
            k: v for k, v in ours.items() if k != "ssl_context"}
        assert (auth.get("ssl_context") is None) == ("ssl_context" not in ours)


# --- explain -----------------------------------------------------------------------------------

BROKER = "kafka://127.0.0.1:9093"


def test_explains_refused_credentials_without_the_password(sasl_ssl: Security):
    exc = SaslAuthenticationFailed("Authentication failed during authentication due to invalid "
                                   "credentials with SASL mechanism SCRAM-SHA-512")
    line = explain(exc, BROKER, sasl_ssl)
    assert line == ("Kafka at 127.0.0.1:9093 refused the credentials of user 'alice' "
                    "(ORDERSTATS_SASL_USERNAME/ORDERSTATS_SASL_PASSWORD, "
                    "ORDERSTATS_SASL_MECHANISM=SCRAM-SHA-512): Authentication failed during "
                    "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512")
    leaky = SaslAuthenticationFailed(f"bad password {SECRET}")
    assert SECRET not in explain(leaky, BROKER, sasl_ssl)


def test_explains_through_causes_and_groups(sasl_ssl: Security):
    try:
        try:
            raise SaslAuthenticationFailed("nope")
        except SaslAuthenticationFailed as inner:
            raise RuntimeError("worker failed") from inner
    except RuntimeError as outer:
        assert "refused the credentials" in explain(outer, BROKER, sasl_ssl)
    group = ExceptionGroup("start", [ValueError("x"), UnsupportedSaslMechanismError("PLAIN only")])
    assert explain(group, BROKER, sasl_ssl).startswith(
        "Kafka at 127.0.0.1:9093 does not offer SASL mechanism SCRAM-SHA-512")


def test_explains_unreachable_brokers():
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 9093)")
    assert explain(refused, BROKER) == (
        "cannot reach Kafka at 127.0.0.1:9093 (ORDERSTATS_BROKER): connection refused")
    assert explain(TimeoutError(), "h1:9092;kafka://h2") == (
        "cannot reach Kafka at h1:9092,h2:9092 (ORDERSTATS_BROKER): no answer in time")
    bare = KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9093)]")
    assert explain(bare, BROKER) == (
        "cannot reach Kafka at 127.0.0.1:9093 (ORDERSTATS_BROKER): no bootstrap broker accepted "
        "the connection, TLS handshake or credentials")
    closed = KafkaConnectionError("Connection at 127.0.0.1:9093 closed")
    assert "set ORDERSTATS_SECURITY_PROTOCOL" in explain(closed, BROKER)


def test_explain_leaves_other_errors_alone(sasl_ssl: Security):
    assert explain(ValueError("bad record"), BROKER, sasl_ssl) is None
    assert explain(KeyError("x"), BROKER) is None


def test_explains_an_acl_denial(sasl_ssl: Security):
    line = explain(GroupAuthorizationFailedError("orderstats"), BROKER, sasl_ssl)
    assert line.startswith("Kafka at 127.0.0.1:9093 denied user 'alice' an operation")


def _tls_server(tls: TlsMaterial, tmp: Path) -> ssl.SSLContext:
    """A server context with the broker's key and certificate (from the PKCS12 keystore)."""
    from cryptography.hazmat.primitives.serialization import pkcs12

    key, cert, chain = pkcs12.load_key_and_certificates(tls.keystore_p12.read_bytes(),
                                                       tls.keystore_password.encode())
    pem = tmp / "server.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
                    + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [cert, *chain]))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pem)
    return ctx


def test_explains_real_tls_failures(tmp_path: Path, tls: TlsMaterial, sasl_ssl: Security):
    async def handshake(host: str, sec: Security) -> str | None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0,
                                            ssl=_tls_server(tls, tmp_path))
        port = server.sockets[0].getsockname()[1]
        try:
            _, writer = await asyncio.open_connection(host, port, ssl=ssl_context(sec))
            writer.close()
            return None
        except ssl.SSLError as exc:
            return explain(exc, f"{host}:{port}", sec)
        finally:
            server.close()

    # The broker certificate is valid for 127.0.0.1 and localhost, issued by the test CA.
    assert asyncio.run(handshake("127.0.0.1", sasl_ssl)) is None
    assert asyncio.run(handshake("localhost", sasl_ssl)) is None
    line = asyncio.run(handshake("127.0.0.1", replace(sasl_ssl, ca_file=str(tls.other_ca_pem))))
    assert line.startswith("TLS: the certificate of Kafka at 127.0.0.1:")
    assert f"is not trusted by ORDERSTATS_SSL_CA_FILE={tls.other_ca_pem}: " in line


def test_explains_a_host_name_mismatch():
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_code, exc.verify_message = 62, "Hostname mismatch, certificate is not valid for 'k1'."
    line = explain(exc, "k1:9093", Security(protocol="SSL"))
    assert "is not for that host name" in line and "ORDERSTATS_SSL_CHECK_HOSTNAME=false" in line


# --- bootstrap hosts and probe -----------------------------------------------------------------

def test_bootstrap_hosts():
    assert bootstrap_hosts("kafka://a:1;kafka://b") == [("a", 1), ("b", 9092)]
    assert bootstrap_hosts("a:1,[::1]:2") == [("a", 1), ("::1", 2)]
    with pytest.raises(ValueError, match="ORDERSTATS_BROKER"):
        bootstrap_hosts("a:x")


def test_probe_reports_the_real_cause_quickly(sasl_ssl: Security):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionRefusedError) as refused:
        asyncio.run(probe(f"kafka://127.0.0.1:{port}", sasl_ssl, timeout=5))
    assert "connection refused" in explain(refused.value, f"127.0.0.1:{port}", sasl_ssl)

    with socket.socket() as silent:  # accepts TCP (backlog) but never answers the handshake
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(TimeoutError):
            asyncio.run(probe(f"127.0.0.1:{silent.getsockname()[1]}", sasl_ssl, timeout=0.5))


def test_bootstrap_cause_recovers_what_aiokafka_only_logs():
    causes: list[BaseException] = []

    class Keep(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            cause = bootstrap_cause(record)
            if cause is not None:
                causes.append(cause)
            return cause is None

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def start() -> BaseException:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}")
        try:
            await producer.start()
        except KafkaConnectionError as exc:
            return exc
        finally:
            await producer.stop()
        raise AssertionError("started")

    keep = Keep()
    aiokafka_log = logging.getLogger("aiokafka")
    others = list(aiokafka_log.filters)  # e.g. the CLI's filter that drops these records
    for f in others:
        aiokafka_log.removeFilter(f)
    aiokafka_log.addFilter(keep)
    try:
        bare = asyncio.run(start())
    finally:
        aiokafka_log.removeFilter(keep)
        for f in others:
            aiokafka_log.addFilter(f)
    assert "Unable to bootstrap" in str(bare)
    assert [type(c) for c in causes] == [ConnectionRefusedError]
    assert explain(causes[0], f"127.0.0.1:{port}").endswith("connection refused")
    assert bootstrap_cause(logging.LogRecord("aiokafka", logging.ERROR, "", 0, "other %s",
                                             (ValueError(),), None)) is None
