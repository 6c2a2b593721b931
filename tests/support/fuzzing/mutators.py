"""Mutations of encoded audio files: bit flips, truncation, length fields set to huge, zero
or negative values, header integers at edge values, spliced and duplicated chunks.

`size_fields` knows where each container keeps its lengths (RIFF/RF64/WAVEX, W64, AIFF, AU,
CAF, FLAC metadata, OGG pages, ID3), so that length mutations hit real length fields rather
than random bytes. OGG pages are re-checksummed after a mutation, so a corrupted page reaches
the Vorbis/Opus decoder instead of being dropped by libogg's CRC check.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from support.fuzzing.seeds import Seed


@dataclass(frozen=True, slots=True)
class Field:
    """An integer field in a file: where, how wide, which byte order."""

    offset: int
    width: int  # bytes: 2, 3, 4 or 8
    big_endian: bool

    def read(self, data: bytes | bytearray) -> int:
        raw = bytes(data[self.offset : self.offset + self.width])
        return int.from_bytes(raw, "big" if self.big_endian else "little")

    def write(self, data: bytearray, value: int) -> None:
        value %= 1 << (8 * self.width)  # negative values wrap to two's complement
        raw = value.to_bytes(self.width, "big" if self.big_endian else "little")
        data[self.offset : self.offset + self.width] = raw


_MAX_CHUNKS: Final = 64


def _walk(data: bytes, start: int, header: int, size_at: int, width: int, big: bool) -> list[Field]:
    """Fields of a flat chunk list: `header` bytes per chunk header, the size `size_at` bytes
    into it."""
    fields = []
    pos = start
    for _ in range(_MAX_CHUNKS):
        if pos + header > len(data):
            break
        field = Field(pos + size_at, width, big)
        fields.append(field)
        size = field.read(data)
        if header == 24:  # W64 sizes include the chunk header and are 8-byte aligned
            size = max(size, header) - header
            size += (-size) % 8
        else:
            size += size & 1 if width == 4 else 0  # RIFF/AIFF chunks are padded to even
        pos += header + size
    return fields


def _riff_fields(data: bytes, big: bool) -> list[Field]:
    fields = [Field(4, 4, big)]
    fields += _walk(data, 12, 8, 4, 4, big)
    for f in list(fields):
        tag = data[f.offset - 4 : f.offset]
        if tag == b"ds64":  # RF64: 64-bit RIFF size, data size, sample count
            fields += [Field(f.offset + 4 + 8 * i, 8, big) for i in range(3)]
        if tag == b"fmt ":  # channels, rate, byte rate, block align, bits
            base = f.offset + 4
            fields += [Field(base + 2, 2, big), Field(base + 4, 4, big), Field(base + 8, 4, big)]
            fields += [Field(base + 12, 2, big), Field(base + 14, 2, big)]
    return fields


def _aiff_fields(data: bytes) -> list[Field]:
    fields = [Field(4, 4, True), *_walk(data, 12, 8, 4, 4, True)]
    for f in list(fields):
        if data[f.offset - 4 : f.offset] == b"COMM":  # channels, frames, bits, rate exponent
            base = f.offset + 4
            fields += [Field(base, 2, True), Field(base + 2, 4, True), Field(base + 6, 2, True)]
            fields.append(Field(base + 8, 2, True))
        if data[f.offset - 4 : f.offset] == b"SSND":  # offset, block size
            fields += [Field(f.offset + 4, 4, True), Field(f.offset + 8, 4, True)]
    return fields


def _flac_fields(data: bytes) -> list[Field]:
    fields = []
    pos = 4
    for _ in range(_MAX_CHUNKS):
        if pos + 4 > len(data):
            break
        field = Field(pos + 1, 3, True)
        fields.append(field)
        if data[pos] & 0x7F == 0:  # STREAMINFO: block sizes, frame sizes, rate/ch/bits/total
            base = pos + 4
            fields += [Field(base, 2, True), Field(base + 2, 2, True)]
            fields += [Field(base + 4, 3, True), Field(base + 7, 3, True)]
            fields += [Field(base + 10, 4, True), Field(base + 14, 4, True)]
        last = data[pos] & 0x80
        pos += 4 + field.read(data)
        if last:
            break
    return fields


def _ogg_fields(data: bytes) -> list[Field]:
    fields: list[Field] = []
    pos = data.find(b"OggS")
    while pos >= 0 and len(fields) < 4 * _MAX_CHUNKS:
        if pos + 27 <= len(data):
            # granule position, page sequence, segment count, first lacing value
            fields += [Field(pos + 6, 8, False), Field(pos + 18, 4, False)]
            fields += [Field(pos + 26, 1, False), Field(pos + 27, 1, False)]
        pos = data.find(b"OggS", pos + 4)
    return fields


def size_fields(data: bytes) -> list[Field]:
    """The length (and rate/channel) fields this file's container keeps, as far as they can
    be found; empty for an unknown container."""
    head = data[:4]
    if head in (b"RIFF", b"RF64"):
        return _riff_fields(data, False)
    if head == b"RIFX":
        return _riff_fields(data, True)
    if head == b"riff":  # W64: 16-byte GUIDs, 64-bit sizes that include the header
        return [Field(16, 8, False), *_walk(data, 40, 24, 16, 8, False)]
    if head == b"FORM":
        return _aiff_fields(data)
    if head == b".snd":  # data offset, data size, encoding, rate, channels
        return [Field(o, 4, True) for o in (4, 8, 12, 16, 20)]
    if head == b"caff":  # chunks: 4-byte type, 64-bit signed size
        fields = _walk(data, 8, 12, 4, 8, True)
        for f in list(fields):
            if data[f.offset - 4 : f.offset] == b"desc":  # rate is a float64; fields after
                base = f.offset + 8
                fields += [Field(base + 12, 4, True), Field(base + 16, 4, True)]
                fields += [Field(base + 20, 4, True), Field(base + 24, 4, True)]
                fields += [Field(base + 28, 4, True)]
        return fields
    if head == b"fLaC":
        return _flac_fields(data)
    if head == b"OggS":
        return _ogg_fields(data)
    if head[:3] == b"ID3":
        return [Field(6, 4, True)]
    return []


def _interesting(width: int, original: int, length: int) -> list[int]:
    bits = 8 * width
    return [
        0,
        1,
        -1,
        (1 << (bits - 1)) - 1,  # largest positive
        -(1 << (bits - 1)),  # most negative
        original + 1,
        original - 1,
        original * 2,
        original // 2,
        length * 1000,
        (1 << bits) - 2,
    ]


# ---- ogg checksum -------------------------------------------------------------------------


def _ogg_crc_table() -> list[int]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_CRC: Final = _ogg_crc_table()


def _ogg_crc(page: bytes | bytearray) -> int:
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_CRC[((crc >> 24) & 0xFF) ^ byte]
    return crc


def fix_ogg_checksums(data: bytearray) -> None:
    """Recompute the CRC of every OGG page whose header is intact enough to delimit it."""
    pos = data.find(b"OggS")
    while pos >= 0:
        if pos + 27 > len(data):
            return
        nsegs = data[pos + 26]
        if pos + 27 + nsegs > len(data):
            return
        body = sum(data[pos + 27 : pos + 27 + nsegs])
        end = min(len(data), pos + 27 + nsegs + body)
        data[pos + 22 : pos + 26] = b"\0\0\0\0"
        data[pos + 22 : pos + 26] = struct.pack("<I", _ogg_crc(data[pos:end]))
        pos = data.find(b"OggS", pos + 4)


# ---- mutations ----------------------------------------------------------------------------

Mutation = Callable[[random.Random, bytearray, Sequence[Seed]], str]


def _position(rng: random.Random, data: bytearray) -> int:
    """Mostly in the header, where parsers make decisions; sometimes anywhere."""
    if not data:
        return 0
    if rng.random() < 0.6:
        return rng.randrange(min(len(data), 128))
    return rng.randrange(len(data))


def bit_flips(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    n = rng.choice((1, 1, 2, 4, 16))
    for _ in range(n):
        if data:
            data[_position(rng, data)] ^= 1 << rng.randrange(8)
    return f"bit_flips({n})"


def bytes_set(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    n = rng.choice((1, 2, 8))
    value = rng.choice((0x00, 0xFF, 0x7F, 0x80, 0x01))
    for _ in range(n):
        if data:
            data[_position(rng, data)] = value
    return f"bytes_set({n}x{value:#04x})"


def truncate(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    keep = rng.choice((rng.randrange(max(1, min(len(data), 64))), rng.randrange(max(1, len(data)))))
    keep = max(keep, 1)
    del data[keep:]
    return f"truncate({keep})"


def length_field(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    fields = size_fields(bytes(data))
    if not fields:
        return header_int(rng, data, seeds)
    field = rng.choice(fields)
    if field.offset + field.width > len(data):
        return "length_field(out of file)"
    value = rng.choice(_interesting(field.width, field.read(data), len(data)))
    field.write(data, value)
    return f"length_field(@{field.offset}/{field.width}={value})"


def header_int(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    """An edge value at an aligned offset of the first 64 bytes: catches rate, channel and
    size fields the container walkers do not know."""
    width = rng.choice((2, 4, 8))
    limit = min(len(data), 64) - width
    if limit <= 0:
        return "header_int(file too short)"
    field = Field(rng.randrange(0, limit, width) if limit > width else 0, width, rng.random() < 0.5)
    value = rng.choice(_interesting(width, field.read(data), len(data)))
    field.write(data, value)
    return f"header_int(@{field.offset}/{width}={value})"


def splice(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    """Insert or overwrite with a piece of another seed (maybe another container's header)."""
    other = rng.choice(seeds).data
    start = rng.randrange(len(other))
    piece = other[start : start + rng.choice((4, 16, 64, 512, 4096))]
    at = _position(rng, data)
    if rng.random() < 0.5:
        data[at:at] = piece
        return f"splice_insert({len(piece)}@{at})"
    data[at : at + len(piece)] = piece
    return f"splice_overwrite({len(piece)}@{at})"


def duplicate_chunk(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    """Repeat a region in place: a second fmt/COMM/STREAMINFO, or a page twice."""
    if len(data) < 8:
        return "duplicate_chunk(too short)"
    start = _position(rng, data)
    length = rng.choice((8, 24, 64, 256))
    piece = data[start : start + length]
    data[start:start] = piece * rng.choice((1, 2, 16))
    return f"duplicate_chunk({len(piece)}@{start})"


def drop_region(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    start = _position(rng, data)
    length = rng.choice((1, 4, 16, 256))
    del data[start : start + length]
    return f"drop_region({length}@{start})"


def garbage_tail(rng: random.Random, data: bytearray, seeds: Sequence[Seed]) -> str:
    n = rng.choice((1, 3, 100, 10000))
    data += rng.randbytes(n)
    return f"garbage_tail({n})"


MUTATIONS: Final[tuple[Mutation, ...]] = (
    bit_flips,
    bytes_set,
    truncate,
    length_field,
    length_field,
    header_int,
    splice,
    duplicate_chunk,
    drop_region,
    garbage_tail,
)


def mutate(rng: random.Random, seed: Seed, seeds: Sequence[Seed]) -> tuple[bytes, str]:
    """One to three mutations of `seed`; the bytes and a description of what was done."""
    data = bytearray(seed.data)
    names = [rng.choice(MUTATIONS)(rng, data, seeds) for _ in range(rng.choice((1, 1, 2, 3)))]
    if data[:4] == b"OggS" and rng.random() < 0.8:
        fix_ogg_checksums(data)
        names.append("ogg_crc")
    if not data:
        data = bytearray(b"\0")
    return bytes(data), "+".join(names)
