#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Extract the kernel's BTF (the .BTF section, CONFIG_DEBUG_INFO_BTF=y) from
a kernel image as Debian ships it in /boot, for a cross build of diag:

    kernel-btf.py VMLINUZ OUT.btf

The image may be an ELF vmlinux (its .BTF section), a raw boot Image such
as arm64's (the section's bytes are in it, without section headers), or an
image whose payload is compressed (gzip, xz, zstd, lz4 legacy: s390x,
riscv64). The BTF header is recognised in either byte order; a candidate
counts only if its header is self-consistent (24-byte header, types first,
strings right after) and it lies wholly in the image; the largest wins.
Exits 1 with a message when there is none (the kernel has no BTF).
"""
import gzip
import lzma
import struct
import subprocess
import sys

MAGICS = ((b"\x9f\xeb\x01\x00", "<"), (b"\xeb\x9f\x01\x00", ">"))


def find_btf(data):
    best = None
    for magic, order in MAGICS:
        i = data.find(magic)
        while i >= 0:
            if i + 24 <= len(data):
                hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(order + "5I", data, i + 4)
                total = hdr_len + str_off + str_len
                if (hdr_len == 24 and type_off == 0 and str_off == type_len and type_len > 0
                        and str_len > 0 and i + total <= len(data)
                        and (best is None or total > len(best))):
                    best = data[i:i + total]
            i = data.find(magic, i + 1)
    return best


def elf_btf(data):
    """The .BTF section of an ELF file, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    order = "<" if data[5] == 1 else ">"
    shoff, = struct.unpack_from(order + "Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from(order + "3H", data, 0x3a)
    def sh(n):
        return struct.unpack_from(order + "IIQQQQIIQQ", data, shoff + n * shentsize)
    strtab = sh(shstrndx)
    for n in range(shnum):
        s = sh(n)
        name = data[strtab[4] + s[0]:].split(b"\0", 1)[0]
        if name == b".BTF":
            return data[s[4]:s[4] + s[5]]
    return None


def payloads(data):
    """Decompressed payloads embedded in a boot image."""
    def unzstd(blob):
        r = subprocess.run(["zstd", "-dc"], input=blob, capture_output=True)
        return r.stdout
    def unlz4(blob):
        r = subprocess.run(["lz4", "-dc"], input=blob, capture_output=True)
        return r.stdout
    kinds = ((b"\x1f\x8b\x08", lambda b: gzip.GzipFile(fileobj=__import__("io").BytesIO(b)).read()),
             (b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
             (b"\x28\xb5\x2f\xfd", unzstd), (b"\x02\x21\x4c\x18", unlz4))
    for magic, fn in kinds:
        i = data.find(magic)
        tries = 0
        while i >= 0 and tries < 8:
            try:
                out = fn(data[i:])
            except Exception:  # not a stream after all, or trailing garbage
                out = b""
            if len(out) > 1 << 20:
                yield out
            tries += 1
            i = data.find(magic, i + 1)


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    data = open(sys.argv[1], "rb").read()
    btf = elf_btf(data) or find_btf(data)
    if btf is None:
        for p in payloads(data):
            btf = elf_btf(p) or find_btf(p)
            if btf:
                break
    if btf is None:
        print(f"kernel-btf: no BTF in {sys.argv[1]} (a kernel without CONFIG_DEBUG_INFO_BTF?)", file=sys.stderr)
        return 1
    with open(sys.argv[2], "wb") as f:
        f.write(btf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
