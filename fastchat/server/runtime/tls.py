"""TLS for the listeners: the server's ``ssl.SSLContext``, its certificate, and clients'
certificates (CertFP).

Owns: choosing the certificate (``--tls-cert``/``--tls-key``, or a self-signed one for the
server name, made once in the data directory and reused at every start), the context that
every TLS connection is wrapped with (TLS 1.2 at least), and what a client's certificate
becomes: its fingerprint (:func:`certfp`).
Must never: touch a connection. The worker's loop drives handshakes, reads and writes.

CertFP: the TLS listener asks every client for a certificate, accepts any (self-signed is
the usual case: the certificate is an identity, as an SSH key is, not a proof signed by
anyone), and lets a client without one in. Python's ``ssl`` cannot say that: ``CERT_OPTIONAL``
*verifies* a certificate the client shows against the CAs loaded, and fails the handshake
of every self-signed one. The options, weighed:

- pyOpenSSL (``set_verify`` with a callback returning True) would replace ``ssl.SSLSocket``
  in the worker's loop with ``OpenSSL.SSL.Connection``: another socket type in the hot path,
  another error vocabulary, and a library its own maintainers ask people to move away from.
- Loading each account's certificate as a CA (``load_verify_locations``) would need the
  certificates themselves, not fingerprints, and a new context for each change.
- A handshake without a certificate request, then TLS 1.3 post-handshake authentication:
  clients (irssi, WeeChat, most libraries) do not offer it, and it verifies just the same.
- A verify callback on the context's ``SSL_CTX``, set with ``ctypes`` through the very
  ``libssl`` that ``_ssl`` is linked against (its handle resolves the symbol in its own
  dependencies), that says "accept" whatever OpenSSL found (what Ergo does with Go's
  ``tls.RequestClientCert``). Its risk is the pointer: CPython's ``PySSLContext`` holds its
  ``SSL_CTX *`` right after the object header, which no API promises.

We take the last one, and make its risk safe: :func:`_probe` runs once per process before
anything is served, checks that the pointer is the context's (``SSL_CTX_get_verify_mode``
reads back the modes Python set) and then does a real handshake in memory with a freshly
made self-signed client certificate, and a second one without any: only if the server side
saw the certificate's DER, and the certificate-less client got in too, does the listener ask
for certificates. Otherwise the log says why and TLS works without CertFP (``CERT_NONE``, as
before). CPython 3.11's ``verify_mode`` setter keeps a callback set before it, 3.13's clears
it: :func:`request_client_certificates` sets the mode first, then the callback.
"""

from __future__ import annotations

import ctypes
import datetime
import hashlib
import ipaddress
import logging
import os
import ssl
from typing import Any

from fastchat.server.config import Config, ConfigError

log = logging.getLogger("fastchat.tls")

#: The self-signed certificate and its key, in the data directory
SELF_SIGNED_CERT = "tls-cert.pem"
SELF_SIGNED_KEY = "tls-key.pem"
#: How long a self-signed certificate is valid
SELF_SIGNED_DAYS = 825


def certificate_files(config: Config, make: bool = True) -> tuple[str, str | None]:
    """The certificate file and its key file (``None``: the key is in the certificate's
    file). Without ``--tls-cert``, a self-signed certificate in the data directory, made on
    the first start (unless not ``make``: a reload reads the files that are there, and
    every worker making its own would race); raises ``OSError`` if it cannot be written."""
    if config.tls_cert is not None:
        return config.tls_cert, config.tls_key
    cert = os.path.join(config.data_dir, SELF_SIGNED_CERT)
    key = os.path.join(config.data_dir, SELF_SIGNED_KEY)
    if make and not (os.path.exists(cert) and os.path.exists(key)):
        os.makedirs(config.data_dir, exist_ok=True)
        write_self_signed(cert, key, config.server_name.decode(errors="replace"))
        log.warning(
            "no --tls-cert: made a self-signed certificate for %s in %s (and its key in %s); "
            "clients must skip verification or trust this file",
            config.server_name.decode(errors="replace"),
            cert,
            key,
        )
    else:
        log.info("no --tls-cert: using the self-signed certificate %s", cert)
    return cert, key


def check_sts(config: Config) -> None:
    """Can the ``sts`` policy configured be offered? Raises :class:`ConfigError` when it
    cannot: no TLS port, or the self-signed certificate made in the data directory with a
    policy (``--sts-duration`` above 0). A client that keeps the policy must verify the
    certificate (the spec asks it to, and it is the point), which it cannot do for one that
    nobody signed: it could never connect again for the policy's duration. So we refuse to
    start, rather than warn, where the mistake is certain; with a certificate of one's own
    (``--tls-cert``) that signs itself, we warn loudly (its clients may have been given it).
    ``--sts-duration 0`` (clients, forget the policy) is always allowed."""
    if config.sts_duration < 0:
        return
    if not config.tls_port:
        raise ConfigError("setting 'sts_duration': an sts policy needs a TLS port (--tls-port)")
    if config.sts_duration == 0:
        return
    if config.tls_cert is None:
        raise ConfigError(
            "setting 'sts_duration': an sts policy with the self-signed certificate would lock "
            "clients out (they must verify the certificate of a server that has a policy); "
            "give a certificate clients trust (--tls-cert, --tls-key), or drop --sts-duration"
        )
    try:
        from cryptography import x509

        with open(config.tls_cert, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError):
        return  # (loading it for the listener says what is wrong with it)
    if cert.issuer == cert.subject:
        log.warning(
            "--sts-duration with a self-signed certificate (%s): only clients that were "
            "given this certificate can connect while they keep the policy; others are "
            "locked out for %d seconds",
            config.tls_cert,
            config.sts_duration,
        )


def write_self_signed(cert_path: str, key_path: str, name: str) -> None:
    """A new EC P-256 key and a certificate for ``name`` signed by it, as PEM files; the
    key readable by its owner only."""
    cert_pem, key_pem = self_signed_pem(name)
    # The key first, and never readable by others, not even for a moment
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    with open(cert_path, "wb") as f:
        f.write(cert_pem)


def self_signed_pem(name: str) -> tuple[bytes, bytes]:
    """A new EC P-256 key and a self-signed certificate for ``name`` (and localhost,
    127.0.0.1 and ::1): (certificate, key), PEM."""
    # Imported here: only a server that makes a certificate pays for loading cryptography
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    # The server's name, and this machine's loopback names: a client trusting this file
    # (``fastchat client --tls-ca``) can verify it when it connects to localhost too
    alt_names: list[x509.GeneralName] = [x509.DNSName(name)]
    if name != "localhost":
        alt_names.append(x509.DNSName("localhost"))
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(cert: str, key: str | None, client_certificates: bool = True) -> ssl.SSLContext:
    """The context of the TLS listeners: TLS 1.2 or later, the certificate loaded (raises
    ``OSError``/``ssl.SSLError`` for files that are missing or do not match), and clients'
    certificates asked for (CertFP) where :func:`certfp_available`. ``client_certificates``
    False: none asked for (the web port's: a browser asked for one may show its user a
    certificate picker)."""
    context = _bare_server_context()
    context.load_cert_chain(cert, key)
    if client_certificates and certfp_available():
        request_client_certificates(context)
    return context


def reloaded_context(config: Config, client_certificates: bool = True) -> ssl.SSLContext:
    """SIGHUP or REHASH: the listeners' context with the certificate files read again (new
    connections get it; those already made keep theirs). Raises ``OSError`` or
    ``ssl.SSLError`` for files that are missing, unreadable or do not match: the caller
    keeps the context it has, and says why."""
    return server_context(*certificate_files(config, make=False), client_certificates)


def _bare_server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def certfp(sock: ssl.SSLSocket | ssl.SSLObject) -> bytes:
    """The client certificate's fingerprint once the handshake is done: the SHA-256 of its
    DER form, in lowercase hexadecimal (as Ergo and InspIRCd show it); b"" without one."""
    der = sock.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest().encode() if der else b""


# -- asking for any client certificate (see the module's docstring) -------------------------------
# int verify_callback(int preverify_ok, X509_STORE_CTX *x509_ctx)
_VERIFY_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)
_SSL_VERIFY_PEER = 0x01


def _accept_any(preverify_ok: int, store: int | None) -> int:
    """OpenSSL's verify callback: whatever it found wrong with the chain (self-signed,
    expired, unknown issuer), the certificate is taken; it is an identity, not a proof."""
    return 1


# Kept for the life of the process: OpenSSL holds only the C pointer
_accept_any_c = _VERIFY_CALLBACK(_accept_any)
_libssl: Any = None
#: None: not probed yet; else whether CertFP works in this process (and why not)
_probed: tuple[bool, str] | None = None


def _ssl_ctx_pointer(context: ssl.SSLContext) -> int:
    """The ``SSL_CTX *`` of ``context``: the first field after CPython's object header."""
    return ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value or 0


def _lib() -> Any:
    global _libssl
    if _libssl is None:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)  # resolves libssl's symbols as _ssl itself does
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CALLBACK]
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        _libssl = lib
    return _libssl


def request_client_certificates(context: ssl.SSLContext) -> None:
    """Make ``context`` ask clients for a certificate and take any they show, or none."""
    context.verify_mode = ssl.CERT_OPTIONAL  # first: 3.13's setter drops the callback
    _lib().SSL_CTX_set_verify(_ssl_ctx_pointer(context), _SSL_VERIFY_PEER, _accept_any_c)


def certfp_available() -> bool:
    """Can this process's TLS listeners take clients' self-signed certificates? Probed once
    (:func:`_probe`); the answer, if no, is logged then."""
    global _probed
    if _probed is None:
        try:
            _probed = _probe()
        except Exception as exc:  # anything at all: CertFP is off, TLS still works
            _probed = (False, f"{type(exc).__name__}: {exc}")
        if not _probed[0]:
            log.error("TLS client certificates (CertFP, SASL EXTERNAL) are off: %s", _probed[1])
    return _probed[0]


def _probe() -> tuple[bool, str]:
    """Check :func:`request_client_certificates` on a real handshake, in memory."""
    import tempfile

    lib = _lib()
    probe = _bare_server_context()
    pointer = _ssl_ctx_pointer(probe)
    for mode, raw in ((ssl.CERT_NONE, 0), (ssl.CERT_REQUIRED, 3), (ssl.CERT_NONE, 0)):
        probe.verify_mode = mode
        if lib.SSL_CTX_get_verify_mode(pointer) != raw:
            return False, "this Python's SSLContext does not hold its SSL_CTX where expected"
    cert_pem, key_pem = self_signed_pem("fastchat-probe")
    with tempfile.TemporaryDirectory(prefix="fastchat-tls-") as folder:
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert, "wb") as f:
            f.write(cert_pem)
        with open(key, "wb") as f:
            f.write(key_pem)
        probe.load_cert_chain(cert, key)
        request_client_certificates(probe)
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        plain_client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        plain_client.check_hostname = False
        plain_client.verify_mode = ssl.CERT_NONE
        client.load_cert_chain(cert, key)
    with_cert = _handshake_in_memory(probe, client)
    without = _handshake_in_memory(probe, plain_client)
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    expected = hashlib.sha256(
        x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    ).hexdigest()
    if with_cert != expected.encode():
        return False, "a self-signed client certificate did not reach the server in a test"
    if without != b"":
        return False, "a client without a certificate did not get in in a test"
    return True, ""


def _handshake_in_memory(server: ssl.SSLContext, client: ssl.SSLContext) -> bytes:
    """Shake hands between the two contexts over memory buffers; the server's :func:`certfp`."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_side=False)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = [False, False]
    for _ in range(10):
        for i, side in enumerate((c, s)):
            if not done[i]:
                try:
                    side.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done):
            break
    else:
        raise ssl.SSLError("the test handshake did not finish")
    # TLS 1.3: the client's certificate is checked when the server reads its Finished; a
    # server that refused it would now say so to the client, and the client's next read fail
    c.write(b"x")
    s_in.write(c_out.read())
    s.read(1)
    return certfp(s)
