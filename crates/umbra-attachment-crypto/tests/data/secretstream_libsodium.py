"""Cross-check vector for tests/vectors.rs: a multi-chunk stream-format blob made by libsodium.

Run with PyNaCl installed (`pip install pynacl`): `python3 secretstream_libsodium.py`.
libsodium's init_push picks a random header, so the printed header is one run's; the test
checks that Umbra's encryptor, given that key and header, produces exactly libsodium's bytes
(their SHA-256) and decrypts them. The padding is the §3.1 formula, restated here.
"""
import hashlib
from nacl import bindings as b

N = 100_000  # four 32 KiB chunks once padded
data = bytes((i * 7 + 3) % 251 for i in range(N))
key = bytes(range(32, 64))


def padding_len(n):
    c = -(-n // 32768)
    e = n + 25 + 1 + 17 * c
    m = max(e, 131072)
    f = (1 << (m.bit_length() - 1)) >> 5
    p0 = -(-e // f) * f - e + 1
    i = (p0 // 32785) * 17
    if p0 % 32785 > 32768 * c - n:
        i += 17
    return p0 - i


p = padding_len(N)
stream = b"\0" * (p - 1) + b"\1" + data
state = b.crypto_secretstream_xchacha20poly1305_state()
header = b.crypto_secretstream_xchacha20poly1305_init_push(state, key)
blob = b"S" + header
chunks = [stream[i:i + 32768] for i in range(0, len(stream), 32768)]
for j, chunk in enumerate(chunks):
    tag = (b.crypto_secretstream_xchacha20poly1305_TAG_FINAL if j == len(chunks) - 1
           else b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
    blob += b.crypto_secretstream_xchacha20poly1305_push(state, chunk, None, tag)

print("size", N, "padding", p, "chunks", len(chunks), "blob", len(blob))
print("key", key.hex())
print("header", header.hex())
print("blob_sha256", hashlib.sha256(blob).hexdigest())
