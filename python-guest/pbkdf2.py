"""hashlib.pbkdf2_hmac, which CPython provides only through OpenSSL, which the guest has not.

Password hashing is a common use of PL/Python; this is PBKDF2 with HMAC (RFC 8018) over the
hashes the guest does have, in pure Python: the same keys, more slowly.
"""

import hashlib

_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


def pbkdf2_hmac(hash_name, password, salt, iterations, dklen=None):
    """Password based key derivation function 2 (PKCS #5 v2.0) with HMAC as pseudorandom function."""
    if not isinstance(hash_name, str):
        raise TypeError("hash_name must be str, not %s" % type(hash_name).__name__)
    password = bytes(memoryview(password))
    salt = bytes(memoryview(salt))
    inner = hashlib.new(hash_name)
    outer = hashlib.new(hash_name)
    block = getattr(inner, "block_size", 64)
    if len(password) > block:
        password = hashlib.new(hash_name, password).digest()
    password = password.ljust(block, b"\0")
    inner.update(password.translate(_INNER_PAD))
    outer.update(password.translate(_OUTER_PAD))

    def prf(message):
        i, o = inner.copy(), outer.copy()
        i.update(message)
        o.update(i.digest())
        return o.digest()

    if iterations < 1:
        raise ValueError("iteration value must be greater than 0.")
    if dklen is None:
        dklen = outer.digest_size
    if dklen < 1:
        raise ValueError("key length must be greater than 0.")
    key = bytearray()
    block_number = 1
    while len(key) < dklen:
        u = prf(salt + block_number.to_bytes(4, "big"))
        t = int.from_bytes(u, "big")
        for _ in range(iterations - 1):
            u = prf(u)
            t ^= int.from_bytes(u, "big")
        key += t.to_bytes(outer.digest_size, "big")
        block_number += 1
    return bytes(key[:dklen])


def install():
    if not hasattr(hashlib, "pbkdf2_hmac"):
        hashlib.pbkdf2_hmac = pbkdf2_hmac
        hashlib.__all__ = (*hashlib.__all__, "pbkdf2_hmac")
