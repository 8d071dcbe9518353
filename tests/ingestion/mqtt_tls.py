"""A Mosquitto with TLS listeners and a throwaway CA, for tests/ingestion/test_bridge_tls.py.

`tls_broker(directory)` starts Mosquitto on two free ports with a certificate from a CA made
here with `cryptography`: one listener asks for a user name and password (a `mosquitto_passwd`
file), the other for a client certificate signed by the CA. It also makes an unrelated CA, for
"not trusted". Without Mosquitto: skipped, or failed when CI=true.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.servers import free_port
from tests.conftest import running_mosquitto


@dataclass(frozen=True, slots=True)
class TlsBroker:
    """The `tls_mosquitto` fixture: where it listens, and the files a client needs."""

    #: mqtts://localhost:PORT: user name and password (USERNAME / PASSWORD)
    password_url: str
    #: mqtts://localhost:PORT: a client certificate signed by the CA
    certificate_url: str
    ca_file: Path
    client_cert: Path
    client_key: Path
    #: a CA that did not sign the broker's certificate
    other_ca_file: Path
    username: str = "bridge"
    password: str = "correct horse battery staple"


def _make_pki(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1, a client certificate; another CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))  # fmt: skip
        return path

    def write_cert(cert: x509.Certificate, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        return key, cert

    def leaf(
        cn: str, issuer: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], server: bool
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(name(cn)).issuer_name(issuer[1].subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer[1].public_key()  # type: ignore[arg-type]
            ), critical=False)
        )  # fmt: skip
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return key, builder.sign(issuer[0], hashes.SHA256())

    authority = ca("smartregion test CA")
    server = leaf("localhost", authority, server=True)
    client = leaf("bridge-client", authority, server=False)
    other = ca("some other CA")
    return {
        "ca": write_cert(authority[1], directory / "ca.pem"),
        "server_cert": write_cert(server[1], directory / "server.pem"),
        "server_key": write_key(server[0], directory / "server.key"),
        "client_cert": write_cert(client[1], directory / "client.pem"),
        "client_key": write_key(client[0], directory / "client.key"),
        "other_ca": write_cert(other[1], directory / "other-ca.pem"),
    }


@contextmanager
def tls_broker(directory: Path) -> Iterator[TlsBroker]:
    """A Mosquitto with TLS listeners (see the module docstring), stopped on exit."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if binary is None or not Path(passwd).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("Mosquitto (with mosquitto_passwd) is required in CI but not installed")
        pytest.skip("Mosquitto is not installed")
    files = _make_pki(directory)
    broker = TlsBroker(
        "", "", files["ca"], files["client_cert"], files["client_key"], files["other_ca"]
    )
    passwords = directory / "passwords"
    subprocess.run([passwd, "-b", "-c", str(passwords), broker.username, broker.password], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    by_password, by_certificate = free_port(), free_port()
    # started as root, Mosquitto drops to its own user, which may not read this private directory
    as_root = "user root\n" if os.geteuid() == 0 else ""
    tls = f"cafile {files['ca']}\ncertfile {files['server_cert']}\nkeyfile {files['server_key']}\n"
    config = directory / "mosquitto.conf"
    config.write_text(
        f"per_listener_settings true\npersistence false\n{as_root}"
        f"listener {by_password} 127.0.0.1\n{tls}allow_anonymous false\npassword_file {passwords}\n"
        f"listener {by_certificate} 127.0.0.1\n{tls}require_certificate true\n"
        "use_identity_as_username true\nallow_anonymous false\n"
    )
    with running_mosquitto(binary, config, [by_password, by_certificate]):
        yield TlsBroker(
            f"mqtts://localhost:{by_password}", f"mqtts://localhost:{by_certificate}",
            files["ca"], files["client_cert"], files["client_key"], files["other_ca"],
        )  # fmt: skip
