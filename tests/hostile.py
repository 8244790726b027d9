"""Hostile files for tests, made without ever holding what they decode to."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _zeros_zlib(total: int, block: int = 1 << 24) -> bytes:
    """A zlib stream of ``total`` zero bytes, built from one compressed block repeated.

    Each block ends on a full flush (byte-aligned, no back-references across it), so
    the same compressed bytes can be repeated; the Adler-32 of n zeros is (n mod 65521) << 16 | 1.
    """
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = comp.compress(b"\0" * block) + comp.flush(zlib.Z_FULL_FLUSH)
    n, rest = divmod(total, block)
    tail_comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = tail_comp.compress(b"\0" * rest) + tail_comp.flush(zlib.Z_FINISH)
    adler = ((total % 65521) << 16) | 1
    return b"\x78\xda" + one * n + tail + struct.pack(">I", adler)


def png_bomb(path: Path, width: int, height: int, color_type: int = 3, bit_depth: int = 8,
             transparency: bool = True) -> Path:
    """A valid PNG of width×height zero pixels (palette + tRNS by default): a few hundred KB
    on disk for what decodes to gigabytes."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    row = 1 + (width * channels * bit_depth + 7) // 8
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if color_type == 3:
        out += _chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff")
        if transparency:
            out += _chunk(b"tRNS", b"\x00")
    out += _chunk(b"IDAT", _zeros_zlib(row * height)) + _chunk(b"IEND", b"")
    Path(path).write_bytes(out)
    return Path(path)


def png_bomb_bytes(width: int, height: int, **kw) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return png_bomb(Path(d) / "b.png", width, height, **kw).read_bytes()
