"""A certificate authority made at run time, for the benchmark's TLS listeners.

Writes into DIR: `server.pem` and `server-key.pem` (for 127.0.0.1 and
localhost; the chain a regional AWS endpoint sends: an RSA 2048 leaf and the
intermediate that signed it, under a new root) and `trust.pem`, the machine's root bundle with
the new CA appended. The Lambda under test trusts `trust.pem` through
`SSL_CERT_FILE`, the standard variable every TLS stack here reads, so it loads
a root store of the size it loads on Lambda (one bundle file of some 140 roots);
`ca.pem` is the CA alone, to measure what the root store's size costs.
Nothing is installed on the machine; the key never leaves DIR."""

import datetime
import ipaddress
import pathlib
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"]


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = dict(not_valid_before=now - datetime.timedelta(minutes=5), not_valid_after=now + datetime.timedelta(days=1))
    def new_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def issue(subject, key, issuer, issuer_key, extensions):
        builder = (
            x509.CertificateBuilder(subject_name=name(subject), issuer_name=name(issuer), **valid)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(issuer_key, hashes.SHA256())

    def ca_extensions(path_length):
        return [
            (x509.BasicConstraints(ca=True, path_length=path_length), True),
            (x509.KeyUsage(False, False, False, False, False, True, True, False, False), True),
        ]

    root_key, intermediate_key, key = new_key(), new_key(), new_key()
    root_name, intermediate_name = "sfn-singleton benchmark root", "sfn-singleton benchmark RSA 2048"
    ca = issue(root_name, root_key, root_name, root_key, ca_extensions(1))
    intermediate = issue(intermediate_name, intermediate_key, root_name, root_key, ca_extensions(0))
    server = issue(
        "127.0.0.1",
        key,
        intermediate_name,
        intermediate_key,
        [
            (
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                False,
            ),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    pem = serialization.Encoding.PEM
    (out / "server.pem").write_bytes(server.public_bytes(pem) + intermediate.public_bytes(pem))
    (out / "server-key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    system = next((pathlib.Path(p) for p in SYSTEM_BUNDLES if pathlib.Path(p).is_file()), None)
    bundle = system.read_bytes() if system else b""
    (out / "trust.pem").write_bytes(bundle + ca.public_bytes(pem))
    (out / "ca.pem").write_bytes(ca.public_bytes(pem))
    roots = bundle.count(b"-----BEGIN CERTIFICATE-----") + 1
    print(f"{roots} roots ({system or 'no system bundle'} + the run's CA)")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
