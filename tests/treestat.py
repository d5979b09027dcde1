#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Facts about a source tree that tests turn into bounds and expectations.

    treestat.py SRC [--chunk-size N]...

Prints JSON: paths, inodes (distinct), dirs, regs (distinct regular inodes),
apparent_bytes and allocated_bytes of distinct regular inodes, xattr_bytes
(names + values, all inodes), unique_file_bytes (distinct contents, rounded
up to 4 KiB blocks), and per chunk size N: "chunks_N" = {total, unique,
unique_bytes (each distinct non-zero chunk rounded up to a 4 KiB block),
zero (chunks that are all zero: holes or written zeroes)}.
Holes are found with SEEK_DATA/SEEK_HOLE, so huge sparse files are cheap.
"""
import argparse
import hashlib
import json
import os
import stat

BLK = 4096


def round_blk(n):
    return (n + BLK - 1) // BLK * BLK


def data_regions(fd, size):
    out, off = [], 0
    while off < size:
        try:
            s = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        e = min(os.lseek(fd, s, os.SEEK_HOLE), size)
        out.append((s, e))
        off = e
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("--chunk-size", type=int, action="append", default=[])
    a = ap.parse_args()

    seen = {}
    st = {"paths": 0, "inodes": 0, "dirs": 0, "regs": 0, "apparent_bytes": 0,
          "allocated_bytes": 0, "xattr_bytes": 0, "unique_file_bytes": 0}
    contents = set()
    chunks = {c: {"total": 0, "unique": 0, "unique_bytes": 0, "zero": 0, "_seen": set()}
              for c in a.chunk_size}
    for dirpath, dirnames, filenames, dirfd in os.fwalk(os.fsencode(a.src)):
        for name in [b"."] + dirnames + filenames:
            if name == b"." and dirpath != os.fsencode(a.src):
                continue   # counted from the parent
            s = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            st["paths"] += 1
            if s.st_ino in seen:
                continue
            seen[s.st_ino] = True
            st["inodes"] += 1
            p = b"/proc/self/fd/%d/%s" % (dirfd, name) if name != b"." else dirfd
            follow = name == b"."
            try:
                for x in os.listxattr(p, follow_symlinks=follow):
                    st["xattr_bytes"] += len(x) + len(os.getxattr(p, x, follow_symlinks=follow))
            except OSError:
                pass
            if stat.S_ISDIR(s.st_mode):
                st["dirs"] += 1
                continue
            if not stat.S_ISREG(s.st_mode):
                continue
            st["regs"] += 1
            st["apparent_bytes"] += s.st_size
            st["allocated_bytes"] += s.st_blocks * 512
            fd = os.open(name, os.O_RDONLY, dir_fd=dirfd)
            try:
                regions = data_regions(fd, s.st_size)
                h = hashlib.sha256()
                pos = 0
                for rs, re in regions:
                    h.update(b"hole%d" % (rs - pos))
                    h.update(os.pread(fd, re - rs, rs) if re - rs < (64 << 20) else b"big%d" % rs)
                    pos = re
                h.update(b"size%d" % s.st_size)
                if h.digest() not in contents:
                    contents.add(h.digest())
                    st["unique_file_bytes"] += round_blk(sum(e - s0 for s0, e in regions))
                for c, cs in chunks.items():
                    n = (s.st_size + c - 1) // c
                    ri = 0
                    for i in range(n):
                        off, ln = i * c, min(c, s.st_size - i * c)
                        while ri < len(regions) and regions[ri][1] <= off:
                            ri += 1
                        cs["total"] += 1
                        if ri >= len(regions) or regions[ri][0] >= off + ln:
                            cs["zero"] += 1
                            continue
                        data = os.pread(fd, ln, off)
                        if data.count(0) == len(data):
                            cs["zero"] += 1
                            continue
                        d = hashlib.sha256(data).digest()
                        if d not in cs["_seen"]:
                            cs["_seen"].add(d)
                            cs["unique"] += 1
                            cs["unique_bytes"] += round_blk(ln)
            finally:
                os.close(fd)
    for c, cs in chunks.items():
        del cs["_seen"]
        st["chunks_%d" % c] = cs
    print(json.dumps(st))


if __name__ == "__main__":
    main()
