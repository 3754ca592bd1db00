"""Throwaway TLS material for tests: a CA, a broker certificate it signed, and a stranger CA.

``make_broker_tls`` writes, into one directory:

* ``ca.pem``: the test CA's certificate (what clients put in ``ORDERSTATS_SSL_CA_FILE``);
* ``broker.p12``: a PKCS12 keystore with the broker's key and certificate (valid for
  ``127.0.0.1``, ``::1`` and ``localhost``) followed by the CA certificate, for
  ``ORDERSTATS_KAFKA_SSL_KEYSTORE`` of ``scripts/kafka``;
* ``client.pem`` / ``client-key.pem``: a client certificate and its unencrypted key signed
  by the same CA (for mutual TLS, or just to exercise ``ORDERSTATS_SSL_CERT_FILE``);
* ``other-ca.pem``: an unrelated CA that signed nothing here: a client trusting only it
  must refuse the broker ("untrusted CA").

Keys are EC P-256 (fast to make; Java 17 and OpenSSL both take them). Everything is valid
from a day ago (clock skew) for 30 days. Needs the ``cryptography`` package.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsMaterial", "make_broker_tls"]


@dataclass(frozen=True)
class TlsMaterial:
    ca_pem: Path
    other_ca_pem: Path
    keystore_p12: Path
    keystore_password: str
    client_cert_pem: Path
    client_key_pem: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "orderstats tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity() -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.timezone.utc)
    return now - dt.timedelta(days=1), now + dt.timedelta(days=30)


def _make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity()
    cert = (x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _make_leaf(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common_name: str,
               usage: x509.ObjectIdentifier, sans: list[x509.GeneralName] | None = None,
               ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity()
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_agreement=True,
                                            key_cert_sign=False, crl_sign=False,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_broker_tls(dir: Path, password: str) -> TlsMaterial:  # noqa: A002 (the agreed signature)
    """Write a fresh CA, broker keystore, client pair and stranger CA into ``dir``."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca("orderstats test CA")
    _other_key, other_ca = _make_ca("orderstats unrelated CA")
    broker_key, broker_cert = _make_leaf(
        ca_key, ca_cert, "localhost", ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
         x509.IPAddress(ipaddress.ip_address("::1"))])
    client_key, client_cert = _make_leaf(ca_key, ca_cert, "orderstats test client",
                                         ExtendedKeyUsageOID.CLIENT_AUTH)

    ca_pem = dir / "ca.pem"
    ca_pem.write_bytes(_pem(ca_cert))
    other_ca_pem = dir / "other-ca.pem"
    other_ca_pem.write_bytes(_pem(other_ca))
    # PBES2 + AES-256 + HMAC-SHA256 (BestAvailableEncryption): read by Java 17's PKCS12 KeyStore.
    keystore = dir / "broker.p12"
    keystore.write_bytes(pkcs12.serialize_key_and_certificates(
        b"broker", broker_key, broker_cert, [ca_cert],
        serialization.BestAvailableEncryption(password.encode())))
    keystore.chmod(0o600)
    client_cert_pem = dir / "client.pem"
    client_cert_pem.write_bytes(_pem(client_cert))
    client_key_pem = dir / "client-key.pem"
    client_key_pem.write_bytes(client_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    client_key_pem.chmod(0o600)
    return TlsMaterial(ca_pem=ca_pem, other_ca_pem=other_ca_pem, keystore_p12=keystore,
                       keystore_password=password, client_cert_pem=client_cert_pem,
                       client_key_pem=client_key_pem)
