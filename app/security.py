"""How every Kafka connection authenticates: TLS, SASL, and one-line explanations of failures.

One :class:`Security` value (read from ``ORDERSTATS_*`` variables by :meth:`Security.from_env`)
turns into the keyword arguments of every aiokafka client (:func:`aiokafka_kwargs`) and the
Faust app settings (:func:`faust_settings`), so one setting applies to every connection.

Secrets: ``Security``'s repr leaves the password out, no message made here contains it
(:func:`explain` even masks it should a library put it in an error), and the password file
is never echoed.

aiokafka's bootstrap logs the real cause of a failed first connection (bad password,
untrusted certificate, refused connection) and then raises a bare ``KafkaConnectionError:
Unable to bootstrap from [...]``. :func:`probe` opens one connection itself, bounded in
time, so the real exception reaches :func:`explain`; or a log filter on the ``aiokafka``
logger keeps the cause with :func:`bootstrap_cause` and hands it to :func:`explain`. The clients do not retry a failed
bootstrap: ``start()`` fails after one attempt per bootstrap host (about 0.3 s for refused
SASL credentials, at once for an untrusted certificate).

Imports only the standard library at module level; aiokafka (:func:`probe`) and Faust
(:func:`faust_settings`) are imported by the functions that need them.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

__all__ = ["MECHANISMS", "PROTOCOLS", "Security", "aiokafka_kwargs", "bootstrap_cause",
           "bootstrap_hosts", "explain", "faust_settings", "probe", "ssl_context"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Security:
    """TLS and SASL settings of the Kafka connection (see README, "Security")."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "PLAIN"  # used by SASL_PLAINTEXT and SASL_SSL only
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    check_hostname: bool = True

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def validate(self) -> "Security":
        """Raise ``ValueError`` naming the variable to fix; returns ``self`` when usable."""
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"ORDERSTATS_SECURITY_PROTOCOL={self.protocol!r} is not one of "
                             f"{', '.join(PROTOCOLS)}")
        if self.uses_sasl:
            if self.mechanism not in MECHANISMS:
                raise ValueError(f"ORDERSTATS_SASL_MECHANISM={self.mechanism!r} is not one of "
                                 f"{', '.join(MECHANISMS)}")
            if not self.username:
                raise ValueError(f"ORDERSTATS_SECURITY_PROTOCOL={self.protocol} needs "
                                 "ORDERSTATS_SASL_USERNAME")
            if not self.password:
                raise ValueError(f"ORDERSTATS_SECURITY_PROTOCOL={self.protocol} needs "
                                 "ORDERSTATS_SASL_PASSWORD or ORDERSTATS_SASL_PASSWORD_FILE")
        elif self.username or self.password:
            # Credentials that would silently go unused are a configuration mistake.
            raise ValueError("ORDERSTATS_SASL_USERNAME/ORDERSTATS_SASL_PASSWORD are set but "
                             f"ORDERSTATS_SECURITY_PROTOCOL={self.protocol} does not use SASL "
                             "(SASL_SSL or SASL_PLAINTEXT do)")
        files = (("ORDERSTATS_SSL_CA_FILE", self.ca_file),
                 ("ORDERSTATS_SSL_CERT_FILE", self.cert_file),
                 ("ORDERSTATS_SSL_KEY_FILE", self.key_file))
        if not self.uses_tls:
            for name, path in files:
                if path:
                    raise ValueError(f"{name} is set but ORDERSTATS_SECURITY_PROTOCOL="
                                     f"{self.protocol} does not use TLS (SSL or SASL_SSL do)")
            return self
        for name, path in files:
            if path and not os.path.isfile(path):
                raise ValueError(f"{name}={path}: no such file")
            if path and not os.access(path, os.R_OK):
                raise ValueError(f"{name}={path}: not readable")
        if self.key_file and not self.cert_file:
            raise ValueError("ORDERSTATS_SSL_KEY_FILE needs ORDERSTATS_SSL_CERT_FILE (the client "
                             "certificate)")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Security":
        """Read and validate the ``ORDERSTATS_*`` security variables (unset: PLAINTEXT)."""
        e = os.environ if env is None else env

        def get(name: str) -> str:
            return (e.get(name) or "").strip()

        password = e.get("ORDERSTATS_SASL_PASSWORD") or ""
        password_file = get("ORDERSTATS_SASL_PASSWORD_FILE")
        if password and password_file:
            raise ValueError("set ORDERSTATS_SASL_PASSWORD or ORDERSTATS_SASL_PASSWORD_FILE, "
                             "not both")
        if password_file:
            password = _read_password_file(password_file)
        check = get("ORDERSTATS_SSL_CHECK_HOSTNAME").lower() or "true"
        if check not in _TRUE | _FALSE:
            raise ValueError(f"ORDERSTATS_SSL_CHECK_HOSTNAME={check!r} is not true or false")
        return cls(protocol=get("ORDERSTATS_SECURITY_PROTOCOL").upper() or "PLAINTEXT",
                   mechanism=get("ORDERSTATS_SASL_MECHANISM").upper() or "PLAIN",
                   username=get("ORDERSTATS_SASL_USERNAME"),
                   password=password,
                   ca_file=get("ORDERSTATS_SSL_CA_FILE"),
                   cert_file=get("ORDERSTATS_SSL_CERT_FILE"),
                   key_file=get("ORDERSTATS_SSL_KEY_FILE"),
                   check_hostname=check in _TRUE).validate()


def _read_password_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ValueError(f"ORDERSTATS_SASL_PASSWORD_FILE={path}: no such file") from None
    except UnicodeDecodeError:
        raise ValueError(f"ORDERSTATS_SASL_PASSWORD_FILE={path}: not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"ORDERSTATS_SASL_PASSWORD_FILE={path}: {exc.strerror}") from None
    password = text.rstrip("\r\n")  # the file's final line break is not part of the password
    if not password:
        raise ValueError(f"ORDERSTATS_SASL_PASSWORD_FILE={path} is empty")
    return password


def _no_key_password() -> bytes:
    # Without a callback, OpenSSL would prompt on the terminal for an encrypted key.
    raise ValueError("ORDERSTATS_SSL_KEY_FILE is encrypted; give an unencrypted key")


def ssl_context(sec: Security) -> ssl.SSLContext | None:
    """The client TLS context, or None when the protocol has no TLS.

    With ``ca_file`` only that CA is trusted, else the system's CAs. ``check_hostname=False``
    still verifies the chain; it only accepts a certificate issued for another name.
    """
    sec.validate()
    if not sec.uses_tls:
        return None
    try:  # a CA file replaces the system's CAs
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=sec.ca_file or None)
    except ssl.SSLError as exc:
        raise ValueError(f"ORDERSTATS_SSL_CA_FILE={sec.ca_file}: no PEM certificate in it "
                         f"({exc.reason or exc})") from None
    ctx.check_hostname = sec.check_hostname
    if sec.cert_file:
        try:
            ctx.load_cert_chain(sec.cert_file, sec.key_file or None, password=_no_key_password)
        except ssl.SSLError as exc:
            raise ValueError(f"ORDERSTATS_SSL_CERT_FILE={sec.cert_file}"
                             f"{f' / ORDERSTATS_SSL_KEY_FILE={sec.key_file}' if sec.key_file else ''}"
                             f": not a certificate and its private key ({exc.reason or exc})") from None
    return ctx


def aiokafka_kwargs(sec: Security) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer/Consumer/AdminClient; {} for PLAINTEXT."""
    sec.validate()
    if sec.protocol == "PLAINTEXT":
        return {}
    kwargs: dict[str, Any] = {"security_protocol": sec.protocol}
    if sec.uses_tls:
        kwargs["ssl_context"] = ssl_context(sec)
    if sec.uses_sasl:
        kwargs.update(sasl_mechanism=sec.mechanism, sasl_plain_username=sec.username,
                      sasl_plain_password=sec.password)
    return kwargs


def faust_settings(sec: Security) -> dict[str, Any]:
    """``faust.App`` settings: ``broker_credentials``; {} for PLAINTEXT.

    faust-streaming's aiokafka driver turns ``SASLCredentials`` into ``security_protocol``
    (SASL_SSL when it has an ssl_context, else SASL_PLAINTEXT), ``sasl_mechanism`` (any of
    PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and ``sasl_plain_username/password`` for its
    consumer (which also creates the topics) and its producers; ``SSLCredentials(context)``
    into SSL with that context.
    """
    sec.validate()
    if sec.protocol == "PLAINTEXT":
        return {}
    import faust

    ctx = ssl_context(sec)
    if sec.uses_sasl:
        creds: Any = faust.SASLCredentials(username=sec.username, password=sec.password,
                                           ssl_context=ctx, mechanism=sec.mechanism)
    else:
        creds = faust.SSLCredentials(ctx)
    return {"broker_credentials": creds}


def bootstrap_hosts(broker: str) -> list[tuple[str, int]]:
    """``kafka://h1:9092;h2`` or ``h1:9092,h2:9093`` -> [(host, port)] (port 9092 if none)."""
    hosts = []
    for part in broker.replace(";", ",").split(","):
        part = part.split("://", 1)[-1].strip().strip("/")
        if not part:
            continue
        if part.startswith("["):  # [v6]:port
            host, _, rest = part[1:].partition("]")
            port = rest.lstrip(":")
        elif part.count(":") == 1:
            host, port = part.split(":")
        else:
            host, port = part, ""
        try:
            hosts.append((host, int(port) if port else 9092))
        except ValueError:
            raise ValueError(f"ORDERSTATS_BROKER={broker!r}: bad port in {part!r}") from None
    if not hosts:
        raise ValueError(f"ORDERSTATS_BROKER={broker!r} names no broker")
    return hosts


async def probe(broker: str, sec: Security, timeout: float = 10.0) -> None:
    """Open and close one authenticated connection to a bootstrap host, within ``timeout``.

    Returns once a host accepted the connection (and the TLS handshake and SASL
    credentials, as the protocol has them). Otherwise raises what went wrong, unwrapped
    (SaslAuthenticationFailed, ssl.SSLCertVerificationError, ConnectionRefusedError,
    TimeoutError ...), for :func:`explain`: with several hosts, a refusal of credentials or
    certificate rather than another host being down.
    """
    import asyncio

    from aiokafka.conn import create_conn

    kwargs = aiokafka_kwargs(sec)
    errors: list[Exception] = []
    for host, port in bootstrap_hosts(broker):
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout * 1000), **kwargs), timeout)
        except Exception as exc:
            errors.append(exc)
            continue
        conn.close()
        return
    # A refusal of the credentials or certificate says more than another host being down.
    unreachable = (ConnectionRefusedError, TimeoutError)
    raise next((e for e in errors if not isinstance(e, unreachable)), errors[-1])


def bootstrap_cause(record: logging.LogRecord) -> BaseException | None:
    """The error in aiokafka's ``Unable connect to "host:port": <error>`` log record.

    aiokafka 0.14 logs it (logger ``aiokafka``, ERROR) for each bootstrap host that failed,
    then raises a bare KafkaConnectionError; the record is the only place with the cause.
    """
    if isinstance(record.msg, str) and record.msg.startswith("Unable connect to"):
        args = record.args if isinstance(record.args, tuple) else ()
        if args and isinstance(args[-1], BaseException):
            return args[-1]
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, its causes and contexts, and the members of exception groups (each once)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(getattr(e, "exceptions", ()) or ())
        if e.__cause__ is not None:
            todo.append(e.__cause__)
        if e.__context__ is not None and not e.__suppress_context__:
            todo.append(e.__context__)


def _names(exc: BaseException) -> set[str]:
    return {c.__name__ for c in type(exc).__mro__}


def _detail(exc: BaseException) -> str:
    """The exception's own words on one line, without aiokafka's "[Error 58] Name: " prefix."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message).rstrip(".")
    if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) and exc.strerror:
        return str(exc.strerror).lower()
    text = " ".join(str(exc).split())
    if "BrokerResponseError" in _names(exc) and ": " in text:
        text = text.split(": ", 1)[1]
    elif "KafkaError" in _names(exc) and text.startswith(type(exc).__name__ + ": "):
        text = text[len(type(exc).__name__) + 2:]
    return text or type(exc).__name__


def explain(exc: BaseException, broker: str, sec: Security | None = None) -> str | None:
    """One line saying why Kafka at ``broker`` could not be used, or None if ``exc`` is not
    a connection, TLS or authentication failure. Never contains the password."""
    line = _explain(exc, broker, sec or Security())
    if line is not None and sec is not None and sec.password:
        line = line.replace(sec.password, "***")
    return line


def _explain(exc: BaseException, broker: str, sec: Security) -> str | None:
    where = _where(broker)
    user = f"user {sec.username!r}" if sec.username else "no user"
    generic: str | None = None
    for e in _chain(exc):
        names = _names(e)
        if names & {"SaslAuthenticationFailed", "AuthenticationFailedError"}:
            return (f"Kafka at {where} refused the credentials of {user} "
                    f"(ORDERSTATS_SASL_USERNAME/ORDERSTATS_SASL_PASSWORD, "
                    f"ORDERSTATS_SASL_MECHANISM={sec.mechanism}): {_detail(e)}")
        if "UnsupportedSaslMechanismError" in names:
            return (f"Kafka at {where} does not offer SASL mechanism {sec.mechanism} "
                    f"(ORDERSTATS_SASL_MECHANISM): {_detail(e)}")
        if names & {"IllegalSaslStateError", "AuthenticationMethodNotSupported"}:
            return (f"Kafka at {where} does not accept SASL here "
                    f"(ORDERSTATS_SECURITY_PROTOCOL={sec.protocol}): {_detail(e)}")
        if any(n.endswith("AuthorizationFailedError") or n.endswith("AuthorizationFailed")
               for n in names):
            return (f"Kafka at {where} denied {user} an operation (ACLs on the cluster): "
                    f"{_detail(e)}")
        if isinstance(e, ssl.SSLCertVerificationError):
            return _explain_verify(e, where, sec)
        if isinstance(e, ssl.SSLError):
            return (f"TLS with Kafka at {where} failed: {_detail(e)} (is that a TLS listener, "
                    f"ORDERSTATS_SECURITY_PROTOCOL={sec.protocol}?)")
        if isinstance(e, ConnectionRefusedError):
            return f"cannot reach Kafka at {where} (ORDERSTATS_BROKER): connection refused"
        if isinstance(e, ConnectionResetError) or (
                "KafkaConnectionError" in names and str(e).rstrip().endswith("closed")):
            hint = ("is that a TLS listener?" if sec.uses_tls else
                    "if that listener uses TLS or SASL, set ORDERSTATS_SECURITY_PROTOCOL")
            return (f"Kafka at {where} closed the connection "
                    f"(ORDERSTATS_SECURITY_PROTOCOL={sec.protocol}; {hint})")
        if isinstance(e, TimeoutError) or names & {"KafkaTimeoutError", "RequestTimedOutError"}:
            return f"cannot reach Kafka at {where} (ORDERSTATS_BROKER): no answer in time"
        if isinstance(e, ConnectionError) or (isinstance(e, OSError) and e.errno is not None):
            # DNS, unreachable network ...
            return f"cannot reach Kafka at {where} (ORDERSTATS_BROKER): {_detail(e)}"
        if generic is None and names & {"KafkaConnectionError", "NoBrokersAvailable"}:
            # aiokafka's bootstrap logs the real cause and raises this bare error; probe()
            # gets the cause itself.
            detail = _detail(e)
            if detail.startswith("Unable to bootstrap") or "NoBrokersAvailable" in names:
                detail = ("no bootstrap broker accepted the connection, TLS handshake or "
                          "credentials")
            generic = f"cannot reach Kafka at {where} (ORDERSTATS_BROKER): {detail}"
    return generic


def _explain_verify(e: ssl.SSLCertVerificationError, where: str, sec: Security) -> str:
    code = e.verify_code
    if code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH (also IP address mismatch: 64)
        return (f"TLS: the certificate of Kafka at {where} is not for that host name "
                f"({_detail(e)}); ORDERSTATS_SSL_CHECK_HOSTNAME=false skips this check")
    if code == 64:
        return (f"TLS: the certificate of Kafka at {where} is not for that IP address "
                f"({_detail(e)}); ORDERSTATS_SSL_CHECK_HOSTNAME=false skips this check")
    if code in (9, 10):  # not yet valid, expired
        return f"TLS: the certificate of Kafka at {where} is out of date: {_detail(e)}"
    trust = (f"ORDERSTATS_SSL_CA_FILE={sec.ca_file}" if sec.ca_file
             else "the system's CA certificates (set ORDERSTATS_SSL_CA_FILE)")
    return f"TLS: the certificate of Kafka at {where} is not trusted by {trust}: {_detail(e)}"


def _where(broker: str) -> str:
    """``kafka://h:9092;kafka://h2:9092`` -> ``h:9092,h2:9092`` (as given if unparsable)."""
    try:
        return ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in bootstrap_hosts(broker))
    except ValueError:
        return broker
