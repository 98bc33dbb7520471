"""Optional passphrase encryption of a backup, as a stream: nothing is held whole in memory.

The file is `MAGIC`, a JSON header line (scrypt parameters and salt, the nonce prefix), then segments of
at most `SEGMENT` plaintext bytes, each `<4-byte big-endian length><AES-256-GCM ciphertext + tag>`. Each
segment's nonce is the 7-byte random prefix, its 4-byte index and a byte that is 1 only on the last one
(the STREAM construction), so a reordered, dropped or cut-off segment fails to decrypt instead of going
unnoticed. The header is authenticated as the associated data of every segment.
"""

from __future__ import annotations

import json
import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"ATRIUM-BACKUP-ENCRYPTED-1\n"
SEGMENT = 1024 * 1024
_LEN = struct.Struct(">I")
# scrypt at n=2^17, r=8: 128 MiB and about half a second per derivation, once per backup or restore.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1


class BackupDecryptError(ValueError):
    """Wrong passphrase, or the file was changed or cut off."""


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """A write-only file object: what is written to it reaches `out` encrypted. `close()` seals the end."""

    def __init__(self, out: BinaryIO, passphrase: str):
        self.out = out
        salt, self.prefix = os.urandom(16), os.urandom(7)
        header = {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt.hex()}
        header["nonce_prefix"] = self.prefix.hex()
        self.aad = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
        self.aead = AESGCM(_key(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))
        self.index = 0
        self.pending = bytearray()
        self.closed = False
        out.write(self.aad)

    def write(self, data: bytes) -> int:
        self.pending += data
        # Keep at least one byte back: the last segment must be sealed as the last one at close().
        while len(self.pending) > SEGMENT:
            self._segment(bytes(self.pending[:SEGMENT]), last=False)
            del self.pending[:SEGMENT]
        return len(data)

    def _segment(self, plain: bytes, *, last: bool) -> None:
        sealed = self.aead.encrypt(_nonce(self.prefix, self.index, last), plain, self.aad)
        self.out.write(_LEN.pack(len(sealed)) + sealed)
        self.index += 1

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        if self.closed:
            return
        self._segment(bytes(self.pending), last=True)
        self.pending.clear()
        self.closed = True
        self.out.flush()


class DecryptingReader:
    """A read-only file object over an encrypted backup (after its `MAGIC`, which the caller has read)."""

    def __init__(self, src: BinaryIO, passphrase: str):
        self.src = src
        line = src.readline(4096)
        try:
            header = json.loads(line)
            salt, self.prefix = bytes.fromhex(header["salt"]), bytes.fromhex(header["nonce_prefix"])
            key = _key(passphrase, salt, int(header["n"]), int(header["r"]), int(header["p"]))
        except (ValueError, KeyError, TypeError):
            raise BackupDecryptError("The encrypted backup's header is damaged.") from None
        self.aad = MAGIC + line
        self.aead = AESGCM(key)
        self.index = 0
        self.buffer = bytearray()
        self.done = False

    def _next(self) -> None:
        raw = self.src.read(_LEN.size)
        if len(raw) < _LEN.size:
            raise BackupDecryptError("The encrypted backup ends early: it was cut off.")
        (size,) = _LEN.unpack(raw)
        if size > SEGMENT + 16:
            raise BackupDecryptError("The encrypted backup is damaged (a segment is too long).")
        sealed = self.src.read(size)
        if len(sealed) < size:
            raise BackupDecryptError("The encrypted backup ends early: it was cut off.")
        for last in (False, True):
            try:
                plain = self.aead.decrypt(_nonce(self.prefix, self.index, last), sealed, self.aad)
            except InvalidTag:
                continue
            self.index += 1
            self.buffer += plain
            self.done = last
            return
        raise BackupDecryptError(
            "The backup cannot be decrypted: the passphrase is wrong, or the file was changed."
            if self.index == 0
            else "The encrypted backup is damaged (a segment does not decrypt)."
        )

    def read(self, n: int = -1) -> bytes:
        while (n < 0 or len(self.buffer) < n) and not self.done:
            self._next()
        if n < 0:
            n = len(self.buffer)
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out
