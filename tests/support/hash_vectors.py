"""Password hashes made by other implementations, in the layouts Kratos verifies.

Prints a JSON list of {"format", "password", "hash", "matches"}: for each format, two
hashes of the password they are checked with (one password ASCII, one not) and one hash
of another password. Run by tests/it/hash_tools.rs; needs python3 with passlib and
argon2-cffi, openssl, htpasswd (apache2-utils) and Debian's argon2 command.
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys

# passlib's own bcrypt when no faster backend (the bcrypt package, crypt(3)) is there.
os.environ.setdefault("PASSLIB_BUILTIN_BCRYPT", "enabled")

import argon2  # noqa: E402
from passlib.crypto.digest import lookup_hash  # noqa: E402
from passlib.hash import (  # noqa: E402
    bcrypt,
    ldap_salted_sha1,
    ldap_salted_sha256,
    ldap_salted_sha512,
    md5_crypt,
    sha256_crypt,
    sha512_crypt,
)

ASCII = "correct horse battery"
NON_ASCII = "pässwörd ключ 🔑 密码"
OTHER = "another password"


def run(*args, stdin=None):
    out = subprocess.run(args, input=stdin, capture_output=True, check=True)
    return out.stdout.decode().strip()


def b64(data, padded=True):
    text = base64.b64encode(data).decode()
    return text if padded else text.rstrip("=")


def salt(n=16):
    return os.urandom(n)


def crypt_salt():
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[b % 64] for b in os.urandom(8))


def argon2_cli(kind):
    def make(pw):
        return run("argon2", b64(salt(12)), f"-{kind}", "-t", "2", "-m", "6", "-p", "1", "-l", "32", "-e",
                   stdin=pw.encode())
    return make


def argon2_cffi(kind):
    def make(pw):
        raw = argon2.low_level.hash_secret(pw.encode(), salt(), time_cost=2, memory_cost=64, parallelism=2,
                                           hash_len=32, type=kind)
        return raw.decode()
    return make


def htpasswd_bcrypt(pw):
    return run("htpasswd", "-nbB", "-C", "4", "user", pw).split(":", 1)[1]


def passlib_bcrypt(ident):
    return lambda pw: bcrypt.using(rounds=4, ident=ident).hash(pw)


def pbkdf2(name, digest):
    def make(pw):
        s = salt()
        key = hashlib.pbkdf2_hmac(digest, pw.encode(), s, 1000, 32)
        return f"$pbkdf2-{name}$i=1000,l=32${b64(s, False)}${b64(key, False)}"
    return make


def scrypt(pw):
    s = salt()
    key = hashlib.scrypt(pw.encode(), salt=s, n=1024, r=8, p=1, dklen=32)
    return f"$scrypt$ln=1024,r=8,p=1${b64(s)}${b64(key)}"


def firebase_scrypt(pw):
    s, sep, signer = salt(), b"\x07", os.urandom(64)
    key = hashlib.scrypt(pw.encode(), salt=s + sep, n=1 << 10, r=8, p=1, dklen=32)
    encrypted = subprocess.run(
        ["openssl", "enc", "-aes-256-ctr", "-nosalt", "-K", key.hex(), "-iv", "00" * 16],
        input=signer, capture_output=True, check=True).stdout
    return f"$firescrypt$ln=10,r=8,p=1${b64(s)}${b64(encrypted)}${b64(sep)}${b64(signer)}"


def openssl_crypt(flag, prefix):
    def make(pw):
        made = run("openssl", "passwd", flag, "-salt", crypt_salt(), pw)
        return prefix + made[made.index("$", 1):]
    return make


def passlib_crypt(handler, prefix, **using):
    def make(pw):
        made = handler.using(**using).hash(pw)
        return prefix + made[made.index("$", 1):]
    return make


def templated(name, template):
    def make(pw):
        s = salt(8)
        raw = template.replace(b"{SALT}", s).replace(b"{PASSWORD}", pw.encode())
        digest = hashlib.new(name, raw).digest()
        return f"${name}$pf={b64(template)}${b64(s)}${b64(digest)}"
    return make


def plain_md5(pw):
    return "$md5$" + b64(hashlib.md5(pw.encode()).digest())


def hmac_hex(name):
    def make(pw):
        key = os.urandom(12)
        constructor = lookup_hash("md4").const if name == "md4" else name
        mac = hmac.new(key, pw.encode(), digestmod=constructor).hexdigest()
        return f"$hmac-{name}${b64(mac.encode())}${b64(key)}"
    return make


# format -> (maker for ASCII, maker for non-ASCII, maker for the mismatch)
FORMATS = {
    "argon2id": (argon2_cli("id"), argon2_cffi(argon2.Type.ID), argon2_cli("id")),
    "argon2i": (argon2_cli("i"), argon2_cffi(argon2.Type.I), argon2_cffi(argon2.Type.I)),
    "bcrypt-2y": (htpasswd_bcrypt, htpasswd_bcrypt, htpasswd_bcrypt),
    "bcrypt-2b": (passlib_bcrypt("2b"), passlib_bcrypt("2b"), passlib_bcrypt("2b")),
    "bcrypt-2a": (passlib_bcrypt("2a"), passlib_bcrypt("2a"), passlib_bcrypt("2a")),
    "pbkdf2-sha1": (pbkdf2("sha1", "sha1"),) * 3,
    "pbkdf2-sha224 (SHA3-224)": (pbkdf2("sha224", "sha3_224"),) * 3,
    "pbkdf2-sha256": (pbkdf2("sha256", "sha256"),) * 3,
    "pbkdf2-sha384 (SHA3-384)": (pbkdf2("sha384", "sha3_384"),) * 3,
    "pbkdf2-sha512": (pbkdf2("sha512", "sha512"),) * 3,
    "scrypt": (scrypt,) * 3,
    "firescrypt": (firebase_scrypt,) * 3,
    "md5-crypt": (openssl_crypt("-1", "$md5-crypt"), passlib_crypt(md5_crypt, "$md5-crypt"),
                  openssl_crypt("-1", "$md5-crypt")),
    "sha256-crypt": (openssl_crypt("-5", "$sha256-crypt"),
                     passlib_crypt(sha256_crypt, "$sha256-crypt", rounds=6000),
                     openssl_crypt("-5", "$sha256-crypt")),
    "sha512-crypt": (openssl_crypt("-6", "$sha512-crypt"),
                     passlib_crypt(sha512_crypt, "$sha512-crypt", rounds=6000),
                     openssl_crypt("-6", "$sha512-crypt")),
    "ssha": (ldap_salted_sha1.hash,) * 3,
    "ssha256": (ldap_salted_sha256.hash,) * 3,
    "ssha512": (ldap_salted_sha512.hash,) * 3,
    "sha1": (templated("sha1", b"{SALT}{PASSWORD}"), templated("sha1", b"{PASSWORD}--{SALT}--"),
             templated("sha1", b"{SALT}{PASSWORD}")),
    "sha256": (templated("sha256", b"{SALT}$${PASSWORD}"), templated("sha256", b"{PASSWORD}{SALT}"),
               templated("sha256", b"{SALT}$${PASSWORD}")),
    "sha512": (templated("sha512", b"{SALT}{PASSWORD}"), templated("sha512", b"{PASSWORD}{SALT}"),
               templated("sha512", b"{SALT}{PASSWORD}")),
    "md5": (plain_md5,) * 3,
    "md5 with pf": (templated("md5", b"{SALT}{PASSWORD}"), templated("md5", b"{PASSWORD}:{SALT}"),
                    templated("md5", b"{SALT}{PASSWORD}")),
    "hmac-md4": (hmac_hex("md4"),) * 3,
    "hmac-md5": (hmac_hex("md5"),) * 3,
    "hmac-sha1": (hmac_hex("sha1"),) * 3,
    "hmac-sha224": (hmac_hex("sha224"),) * 3,
    "hmac-sha256": (hmac_hex("sha256"),) * 3,
    "hmac-sha384": (hmac_hex("sha384"),) * 3,
    "hmac-sha512": (hmac_hex("sha512"),) * 3,
}

vectors = []
for fmt, (ascii_maker, non_ascii_maker, mismatch_maker) in FORMATS.items():
    vectors.append({"format": fmt, "password": ASCII, "hash": ascii_maker(ASCII), "matches": True})
    vectors.append({"format": fmt, "password": NON_ASCII, "hash": non_ascii_maker(NON_ASCII), "matches": True})
    vectors.append({"format": fmt, "password": ASCII, "hash": mismatch_maker(OTHER), "matches": False})
json.dump(vectors, sys.stdout, ensure_ascii=False, indent=1)
