"""TLS for the listeners: the server's ``ssl.SSLContext`` and its certificate.

Owns: choosing the certificate (``--tls-cert``/``--tls-key``, or a self-signed one for the
server name, made once in the data directory and reused at every start) and the context that
every TLS connection is wrapped with (TLS 1.2 at least).
Must never: touch a connection. The worker's loop drives handshakes, reads and writes.
"""

from __future__ import annotations

import datetime
import logging
import os
import ssl

from fastchat.server.config import Config

log = logging.getLogger("fastchat.tls")

#: The self-signed certificate and its key, in the data directory
SELF_SIGNED_CERT = "tls-cert.pem"
SELF_SIGNED_KEY = "tls-key.pem"
#: How long a self-signed certificate is valid
SELF_SIGNED_DAYS = 825


def certificate_files(config: Config) -> tuple[str, str | None]:
    """The certificate file and its key file (``None``: the key is in the certificate's
    file). Without ``--tls-cert``, a self-signed certificate in the data directory, made on
    the first start; raises ``OSError`` if it cannot be written."""
    if config.tls_cert is not None:
        return config.tls_cert, config.tls_key
    cert = os.path.join(config.data_dir, SELF_SIGNED_CERT)
    key = os.path.join(config.data_dir, SELF_SIGNED_KEY)
    if not (os.path.exists(cert) and os.path.exists(key)):
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


def write_self_signed(cert_path: str, key_path: str, name: str) -> None:
    """A new EC P-256 key and a certificate for ``name`` signed by it, as PEM files; the
    key readable by its owner only."""
    # Imported here: only a server that makes a certificate pays for loading cryptography
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
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
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # The key first, and never readable by others, not even for a moment
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def server_context(cert: str, key: str | None) -> ssl.SSLContext:
    """The context of the TLS listeners: TLS 1.2 or later, the certificate loaded (raises
    ``OSError``/``ssl.SSLError`` for files that are missing or do not match)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
