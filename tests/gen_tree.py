#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Deterministic generator of source trees for image tests.

    gen_tree.py DEST [--seed S] [--small] [--parts LIST] [--sparse-huge]
                [--big-dir N] [--manifest FILE]

The same seed and options give the same tree (names, contents, modes, owners,
times, xattrs, ACLs, hard links).  Must run as root (device nodes, chown,
trusted.* xattrs).  DEST must not exist or be empty; it should sit on a
filesystem that takes large xattr values in every namespace (tmpfs does).

Parts (--parts, comma separated; "standard" = all of the first group,
"none" = nothing):
  types      every file type: reg, dir, symlinks (targets 1..4095 bytes),
             char/block devices (small and largest major/minor), fifo, socket
  perms      all 12 permission bits on files and directories
  owners     16-bit and 32-bit uids/gids
  times      mtimes with nanoseconds, pre-epoch, post-2038, and many files
             sharing one mtime
  xattrs     user./trusted./security. xattrs, security.capability (v2), values
             from 0 bytes up to 65535, names up to 255 bytes, many xattrs on
             one inode, one xattr shared by many files
  acls       POSIX access and default ACLs (raw system.posix_acl_* values)
  hardlinks  groups of 2..5 links across directories, of every type
  sizes      0, 1, 4095..8192, chunk boundaries N*64K+-1, 1M+-1, random sizes
  sparse     sparse files with holes (start, middle, end, all-hole)
  names      255-byte names, unicode, invalid UTF-8, spaces, newlines, names
             sorting before ".", a directory spanning many blocks
  deep       a path of depth 40
Extra parts (not in "standard"):
  dedup      many identical files and files built from a small pool of 64 KiB
             chunks (for chunk/file dedup bounds)
  longpath   a chain of 255-byte directory names deeper than PATH_MAX
  sparse-huge (also --sparse-huge)  a 5 GiB sparse file with a few bytes
  big-dir    (--big-dir N) a directory with N entries
"""
import argparse
import json
import os
import random
import socket
import stat
import struct
import sys

STANDARD = ["types", "perms", "owners", "times", "xattrs", "acls", "hardlinks",
            "sizes", "sparse", "names", "deep"]
EXTRA = ["dedup", "longpath", "sparse-huge", "big-dir"]

# Written regions of the huge sparse file: (offset, bytes).  Offsets straddle
# the 4 GiB boundary and the last byte of the file.
HUGE_SIZE = 5 << 30
HUGE_REGIONS = [
    (0, b"ANOLE-HEAD"),
    (4096 * 1000 + 7, b"\x01\x02\x03middle\xff"),
    ((1 << 32) - 8, b"acrossthe4GiBline"),
    ((3 << 30) + 12345, bytes(range(256))),
    (HUGE_SIZE - 5, b"TAIL!"),
]

ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = \
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def acl_value(entries):
    """Raw system.posix_acl_* value (version 2) of (tag, perm, id) entries."""
    entries = sorted(entries, key=lambda e: (e[0], e[2]))
    out = struct.pack("<I", 2)
    for tag, perm, qid in entries:
        if tag not in (ACL_USER, ACL_GROUP):
            qid = 0xFFFFFFFF
        out += struct.pack("<HHI", tag, perm, qid)
    return out


def cap_v2(permitted, inheritable=0, effective=True):
    """security.capability, VFS_CAP_REVISION_2 (20 bytes)."""
    magic = 0x02000000 | (1 if effective else 0)
    return struct.pack("<IIIII", magic, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       permitted >> 32, inheritable >> 32)


class Gen:
    def __init__(self, root, seed, small):
        self.root = root
        self.rng = random.Random(seed)
        self.small = small
        self.dirs = []          # every directory created (for final mtimes)
        self.meta = []          # (path, kind, mode, uid, gid, xattrs, mtime_ns)
        self.manifest = {}

    # ---- primitives -------------------------------------------------------
    def p(self, rel):
        return os.path.join(self.root, rel)

    def mkdir(self, rel, mode=0o755, uid=0, gid=0, xattrs=None, mtime=None):
        path = self.p(rel)
        self._parent(rel)
        if not os.path.isdir(path):
            os.mkdir(path)
        if rel not in self.dirs:
            self.dirs.append(rel)
        self.meta.append((rel, "dir", mode, uid, gid, xattrs or [], mtime))
        return rel

    def content(self, size, kind="random"):
        if kind == "random":
            return self.rng.randbytes(size)
        if kind == "zero":
            return bytes(size)
        if kind == "text":
            words = [b"anole", b"erofs", b"image", b"chunk", b"inode", b"\n"]
            out = bytearray()
            while len(out) < size:
                out += self.rng.choice(words) + b" "
            return bytes(out[:size])
        raise ValueError(kind)

    def file(self, rel, data=b"", mode=0o644, uid=0, gid=0, xattrs=None, mtime=None):
        self._parent(rel)
        with open(self.p(rel), "wb") as f:
            f.write(data)
        self.meta.append((rel, "reg", mode, uid, gid, xattrs or [], mtime))
        return rel

    def symlink(self, rel, target, uid=0, gid=0, xattrs=None, mtime=None):
        self._parent(rel)
        os.symlink(target, self.p(rel))
        self.meta.append((rel, "lnk", None, uid, gid, xattrs or [], mtime))
        return rel

    def node(self, rel, kind, major=0, minor=0, mode=0o644, uid=0, gid=0,
             xattrs=None, mtime=None):
        self._parent(rel)
        if kind == "sock":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            cwd = os.open(".", os.O_RDONLY)
            try:
                os.chdir(os.path.dirname(self.p(rel)) or ".")
                s.bind(os.path.basename(rel))
            finally:
                os.fchdir(cwd)
                os.close(cwd)
                s.close()
        else:
            fmt = {"chr": stat.S_IFCHR, "blk": stat.S_IFBLK, "fifo": stat.S_IFIFO}[kind]
            os.mknod(self.p(rel), fmt | 0o600, os.makedev(major, minor))
        self.meta.append((rel, kind, mode, uid, gid, xattrs or [], mtime))
        return rel

    def link(self, existing, rel):
        self._parent(rel)
        os.link(self.p(existing), self.p(rel), follow_symlinks=False)

    def _parent(self, rel):
        d = os.path.dirname(rel)
        if d and not os.path.isdir(self.p(d)):
            self.mkdir(d)

    def rand_mtime(self):
        r = self.rng.random()
        if r < 0.1:
            sec = self.rng.choice([0, 1, 2**31 - 1, 2**31, 2**32 + 5, 4102444800])
        else:
            sec = self.rng.randrange(946684800, 1900000000)
        return sec * 10**9 + self.rng.randrange(10**9)

    # ---- parts ------------------------------------------------------------
    def part_types(self):
        self.mkdir("types")
        self.file("types/regular", b"hello, erofs\n")
        self.file("types/empty", b"")
        self.mkdir("types/dir")
        self.mkdir("types/dir/empty-subdir")
        for n in [1, 2, 3, 59, 60, 100, 255, 256, 1000, 2047, 2048, 3000, 4000, 4094, 4095]:
            tgt = ("t" * (n - 1) + "x") if n < 200 else "/".join(
                ["a" * 50] * (n // 51 + 1))[:n]
            self.symlink("types/symlink-%04d" % n, tgt)
        self.symlink("types/symlink-abs", "/etc/passwd")
        self.symlink("types/symlink-dangling", "../nowhere/at/all")
        self.symlink("types/symlink-to-dir", "dir")
        self.symlink("types/symlink-dotdot", "../../../../../../..")
        self.symlink("types/symlink-unicode", "ünïcødé/目标")
        devs = [(0, 0), (1, 3), (1, 5), (4, 64), (136, 1), (255, 255), (256, 256),
                (4095, 1048575), (4095, 0), (0, 1048575), (511, 70000)]
        for ma, mi in devs:
            self.node("types/chr-%d-%d" % (ma, mi), "chr", ma, mi, mode=0o620)
        for ma, mi in [(7, 0), (8, 1), (259, 12345), (4095, 1048575), (1, 256)]:
            self.node("types/blk-%d-%d" % (ma, mi), "blk", ma, mi, mode=0o660)
        self.node("types/fifo", "fifo", mode=0o644)
        self.node("types/fifo-private", "fifo", mode=0o600)
        self.node("types/socket", "sock", mode=0o755)
        self.node("types/socket-2", "sock", mode=0o777)

    def part_perms(self):
        self.mkdir("perms")
        modes = [0o000, 0o001, 0o007, 0o070, 0o400, 0o444, 0o600, 0o644, 0o664,
                 0o700, 0o755, 0o777, 0o1000, 0o1644, 0o1777, 0o2000, 0o2755,
                 0o4000, 0o4755, 0o4711, 0o6755, 0o6000, 0o7000, 0o7777, 0o7644]
        for m in modes:
            self.file("perms/file-%04o" % m, b"mode %o\n" % m, mode=m)
        for m in [0o000, 0o500, 0o555, 0o700, 0o711, 0o1777, 0o2775, 0o3777,
                  0o4755, 0o7777, 0o1000]:
            self.mkdir("perms/dir-%04o" % m, mode=m)
        for m in [0o000, 0o1600, 0o2600, 0o4600, 0o7777]:
            self.node("perms/fifo-%04o" % m, "fifo", mode=m)
            self.node("perms/chr-%04o" % m, "chr", 1, 7, mode=m)

    def part_owners(self):
        self.mkdir("owners")
        ids = [(0, 0), (1, 1), (1000, 1000), (65534, 65534), (65535, 65535),
               (65536, 65536), (70000, 70001), (1, 4000000000), (4000000000, 1),
               (4000000000, 4000000001), (4294967294, 4294967294), (123456, 42)]
        for uid, gid in ids:
            self.file("owners/file-%d-%d" % (uid, gid), b"%d:%d\n" % (uid, gid),
                      uid=uid, gid=gid, mode=0o640)
        self.mkdir("owners/dir-70000", uid=70000, gid=4000000000, mode=0o750)
        self.file("owners/dir-70000/inside", b"x", uid=4000000000, gid=70000)
        self.symlink("owners/symlink-big", "file-0-0", uid=4000000000, gid=4000000001)
        self.symlink("owners/symlink-small", "file-1-1", uid=1, gid=2)
        self.node("owners/chr-big", "chr", 10, 200, uid=70000, gid=70000)
        self.node("owners/fifo-big", "fifo", uid=3000000000, gid=5)
        self.node("owners/sock-big", "sock", uid=65536, gid=65537)

    def part_times(self):
        self.mkdir("times")
        for i, ns in enumerate([0, 1, 10**9 - 1, 500000000, 123456789, 999999999]):
            self.file("times/ns-%d" % i, b"t", mtime=1700000000 * 10**9 + ns)
        specials = {
            "epoch0": 0, "one": 10**9 + 1, "y2038-": (2**31 - 1) * 10**9 + 999999999,
            "y2038+": 2**31 * 10**9, "y2106+": (2**32 + 5) * 10**9 + 7,
            "y2100": 4102444800 * 10**9 + 42,
            "pre-epoch": -86400 * 365 * 10**9 + 123456789,
            "pre-epoch-whole": -10**9,
        }
        for name, t in specials.items():
            self.file("times/" + name, name.encode(), mtime=t)
        for i in range(20 if self.small else 60):
            self.file("times/random-%03d" % i, b"r%d" % i, mtime=self.rand_mtime())
        # Many files with one mtime (whole seconds) and many with one mtime
        # with nanoseconds: the compact-inode cases.
        n = 60 if self.small else 250
        for i in range(n):
            self.file("times/same-a/f%04d" % i, b"", mtime=1700000000 * 10**9)
        for i in range(n // 2):
            self.file("times/same-b/f%04d" % i, b"x" * (i % 7),
                      mtime=1650000000 * 10**9 + 123456789)
        self.mkdir("times/dir-ns", mtime=1600000000 * 10**9 + 1)
        self.symlink("times/symlink-ns", "ns-0", mtime=1234567890 * 10**9 + 987654321)
        self.node("times/fifo-ns", "fifo", mtime=1111111111 * 10**9 + 111111111)
        self.node("times/chr-ns", "chr", 5, 1, mtime=1222222222 * 10**9 + 2)

    def part_xattrs(self):
        self.mkdir("xattrs", xattrs=[(b"user.dir", b"on a directory"),
                                     (b"trusted.overlay.opaque", b"y")])
        self.file("xattrs/one-user", b"data", xattrs=[(b"user.a", b"1")])
        self.file("xattrs/empty-value", b"", xattrs=[(b"user.empty", b"")])
        self.file("xattrs/all-ns", b"ns", xattrs=[
            (b"user.u", b"user value"), (b"trusted.t", b"trusted value"),
            (b"security.s", b"security value"), (b"trusted.overlay.redirect", b"/a/b"),
            (b"security.selinux", b"system_u:object_r:bin_t:s0\0")])
        self.file("xattrs/capability", b"#!/bin/sh\n", mode=0o755,
                  xattrs=[(b"security.capability", cap_v2(1 << 10 | 1 << 13))])
        self.file("xattrs/capability-hi", b"bin", mode=0o750, uid=0, gid=70000,
                  xattrs=[(b"security.capability",
                           cap_v2((1 << 38) | (1 << 21), 1 << 7, effective=False))])
        for size in [1, 3, 4, 5, 100, 255, 256, 1000, 2048, 4000, 4096, 4097, 8000,
                     16384, 32768, 65000, 65535]:
            self.file("xattrs/value-%05d" % size, b"v",
                      xattrs=[(b"user.big", self.rng.randbytes(size))])
        self.file("xattrs/trusted-64k", b"", xattrs=[
            (b"trusted.big", self.rng.randbytes(65535))])
        self.file("xattrs/several-big", b"sb", xattrs=[
            (b"user.b1", self.rng.randbytes(20000)), (b"user.b2", self.rng.randbytes(30000)),
            (b"trusted.b3", self.rng.randbytes(40000)),
            (b"security.b4", self.rng.randbytes(5000))])
        # Names: the longest a Linux xattr name may be is 255 bytes in total.
        for ns in (b"user.", b"trusted.", b"security."):
            long_name = ns + b"n" * (255 - len(ns))
            self.file("xattrs/longname-" + ns[:-1].decode(), b"",
                      xattrs=[(long_name, b"long"), (ns + b"x", b"short")])
        self.file("xattrs/name-chars", b"", xattrs=[
            (b"user.with space", b"1"), (b"user.\xc3\xa9t\xc3\xa9", b"2"),
            (b"user.a.b.c.d", b"3"), (b"user.-", b"4"), (b"user.binary", b"\0\1\2\xff")])
        many = [(b"user.attr%03d" % i, b"v%d" % i * (i % 5)) for i in range(100)]
        self.file("xattrs/many", b"m", xattrs=many)
        self.mkdir("xattrs/dir-many", xattrs=many[:40])
        self.symlink("xattrs/symlink", "one-user", xattrs=[
            (b"trusted.sym", b"on a symlink"), (b"security.sym", b"s")])
        self.node("xattrs/chr", "chr", 1, 1, xattrs=[(b"trusted.dev", b"dev")])
        self.node("xattrs/fifo", "fifo", xattrs=[(b"security.fifo", b"fifo")])
        self.node("xattrs/sock", "sock", xattrs=[(b"trusted.sock", b"sock")])
        # The same xattrs on many inodes: candidates for the shared area.
        n = 40 if self.small else 150
        common = [(b"user.shared", b"one value on many files"),
                  (b"security.selinux", b"system_u:object_r:usr_t:s0\0"),
                  (b"trusted.shared-big", b"B" * 3000)]
        for i in range(n):
            extra = [(b"user.own", b"%d" % i)] if i % 3 == 0 else []
            self.file("xattrs/shared/f%04d" % i, b"%d" % i, xattrs=common + extra)
        for i in range(10):
            self.mkdir("xattrs/shared/d%02d" % i, xattrs=common[:2])
            self.symlink("xattrs/shared/l%02d" % i, "f0000", xattrs=common[1:])

    def part_acls(self):
        self.mkdir("acls")
        base = [(ACL_USER_OBJ, 6, 0), (ACL_GROUP_OBJ, 4, 0), (ACL_OTHER, 4, 0)]
        ext = base + [(ACL_USER, 7, 1000), (ACL_USER, 5, 70000), (ACL_GROUP, 6, 4000000000),
                      (ACL_MASK, 7, 0)]
        self.file("acls/access", b"acl", mode=0o640,
                  xattrs=[(b"system.posix_acl_access", acl_value(ext))])
        self.file("acls/access-and-user", b"acl2", mode=0o600,
                  xattrs=[(b"system.posix_acl_access",
                           acl_value(base + [(ACL_USER, 4, 1), (ACL_MASK, 4, 0)])),
                          (b"user.x", b"y")])
        dflt = [(ACL_USER_OBJ, 7, 0), (ACL_GROUP_OBJ, 5, 0), (ACL_OTHER, 0, 0),
                (ACL_GROUP, 7, 100), (ACL_MASK, 7, 0)]
        self.mkdir("acls/dir-default", mode=0o750, xattrs=[
            (b"system.posix_acl_default", acl_value(dflt))])
        self.mkdir("acls/dir-both", mode=0o770, xattrs=[
            (b"system.posix_acl_access", acl_value(ext)),
            (b"system.posix_acl_default", acl_value(dflt))])
        n = 10 if self.small else 40
        for i in range(n):   # the same ACL on many files (shareable)
            self.file("acls/same/f%03d" % i, b"", mode=0o660,
                      xattrs=[(b"system.posix_acl_access", acl_value(ext))])

    def part_hardlinks(self):
        for d in ("hl/a", "hl/b", "hl/c/deeper"):
            self.mkdir(d)
        groups = 12 if self.small else 40
        dirs = ["hl/a", "hl/b", "hl/c/deeper", "hl"]
        for g in range(groups):
            kind = ["reg", "reg", "reg", "empty", "xattr", "lnk", "fifo", "chr", "sock",
                    "bigreg"][g % 10]
            first = "%s/g%02d-0" % (dirs[0], g)
            if kind == "reg":
                self.file(first, self.content(self.rng.randrange(1, 20000)),
                          mode=0o644 | (0o4000 if g == 0 else 0), uid=g, gid=g + 1)
            elif kind == "bigreg":
                self.file(first, self.content(300000), mtime=1500000000 * 10**9 + g)
            elif kind == "empty":
                self.file(first, b"")
            elif kind == "xattr":
                self.file(first, b"with xattrs", xattrs=[
                    (b"user.hl", b"group %d" % g), (b"trusted.hl", b"t")])
            elif kind == "lnk":
                self.symlink(first, "target-of-hardlinked-symlink-%d" % g)
            elif kind in ("fifo", "sock"):
                self.node(first, kind)
            elif kind == "chr":
                self.node(first, "chr", 4095, 1048575 - g)
            nlinks = 2 + g % 4
            for k in range(1, nlinks):
                self.link(first, "%s/g%02d-%d" % (dirs[k % len(dirs)], g, k))
        # Two links in one directory, and a file with 5 links all in one dir.
        self.file("hl/same-dir-1", b"same dir")
        self.link("hl/same-dir-1", "hl/same-dir-2")

    def part_sizes(self):
        self.mkdir("sizes")
        fixed = [0, 1, 2, 511, 512, 513, 1023, 4095, 4096, 4097, 8191, 8192, 8193,
                 12287, 12288, 16385]
        for n in [1, 2, 3, 16]:
            fixed += [n * 65536 - 1, n * 65536, n * 65536 + 1]
        fixed += [(1 << 20) - 1, 1 << 20, (1 << 20) + 1]
        if not self.small:
            fixed += [(2 << 20) + 4097, (4 << 20) - 1, (4 << 20) + 1]
        for n in fixed:
            self.file("sizes/s%08d" % n, self.content(n))
        count = 25 if self.small else 100
        cap = 300000 if self.small else 3000000
        for i in range(count):
            n = int(self.rng.random() ** 3 * cap)
            kind = self.rng.choice(["random", "random", "text", "zero"])
            self.file("sizes/r%03d-%d" % (i, n), self.content(n, kind))
        # Repetition inside one file (chunk dedup within a file).
        blk = self.content(4096)
        self.file("sizes/repeat-4k-x64", blk * 64)
        self.file("sizes/repeat-64k-x8", self.content(65536) * 8)
        self.file("sizes/zeros-1m", bytes(1 << 20))
        self.file("sizes/zeros-4097", bytes(4097))

    def part_sparse(self):
        self.mkdir("sparse")
        specs = {
            "middle-data": (10 << 20, [(5 << 20, b"middle")]),
            "data-start-end": (8 << 20, [(0, b"start"), ((8 << 20) - 3, b"end")]),
            "all-hole": (3 << 20, []),
            "hole-then-tail": ((1 << 20) + 100, [((1 << 20) + 90, b"0123456789")]),
            "many-holes": (4 << 20, [(i * 300000 + 4000, b"d%d" % i) for i in range(13)]),
            "chunk-aligned": (2 << 20, [(65536, b"x" * 65536), (3 * 65536 + 1, b"y")]),
            "unaligned-hole": (70000, [(0, b"a" * 5000), (69000, b"b" * 1000)]),
        }
        for name, (size, regions) in specs.items():
            path = self.file("sparse/" + name, b"")
            with open(self.p(path), "r+b") as f:
                f.truncate(size)
                for off, data in regions:
                    f.seek(off)
                    f.write(data)

    def part_names(self):
        self.mkdir("names")
        names = [
            "n" * 255,
            "é" * 127 + "x",                      # 255 bytes of UTF-8
            "文件名-中文-" + "漢" * 70,
            "emoji-\U0001F600\U0001F680\U0001F9EA",
            "combining-e\u0301-vs-\u00e9",
            "with space", " leading-space", "trailing-space ", "two  spaces",
            "new\nline", "tab\there", "cr\rhere", "quote\"s", "apos'trophe", "back\\slash",
            "-dash-first", "--double", "!bang", "#hash", "+plus", ",comma", "$dollar",
            "...", "..a", ".hidden", ".-", "~tilde", "\x01ctrl", "\x7fdel",
            "a", "A", "Z", "z", "0", "9", "aa", "a.b", "a-b", "a_b",
        ]
        for i, n in enumerate(names):
            self.file("names/" + n, b"%d\n" % i)
        self.mkdir("names/" + "d" * 255)
        self.file("names/" + "d" * 255 + "/" + "f" * 255, b"long/long")
        # Invalid UTF-8, as bytes.
        for raw in [b"\xff\xfe-invalid", b"latin1-\xe9t\xe9", b"\x80"]:
            path = os.path.join(os.fsencode(self.p("names")), raw)
            with open(path, "wb") as f:
                f.write(raw)
            self.meta.append((os.path.join("names", os.fsdecode(raw)), "reg", 0o644, 0, 0,
                              [], None))
        # A directory spanning many directory blocks.
        count = 300 if self.small else 1500
        for i in range(count):
            n = "%05d-" % i + "m" * self.rng.randrange(0, 200)
            self.file("names/many/" + n, b"")
        self.mkdir("names/many-subdirs")
        for i in range(40 if self.small else 150):
            self.mkdir("names/many-subdirs/sub%03d" % i)

    def part_deep(self):
        rel = "deep"
        for i in range(40):
            rel = os.path.join(rel, "level%02d-%s" % (i, "x" * 20))
        self.mkdir(rel)
        self.file(os.path.join(rel, "bottom"), b"deep down\n")
        self.symlink(os.path.join(rel, "up"), "../" * 40)

    def part_longpath(self):
        rel = self.mkdir("longpath")
        for i in range(20):     # 20 * 256 > PATH_MAX
            rel = os.path.join(rel, "%02d" % i + "L" * 253)
            self._mkdir_at(rel)
        self._file_at(os.path.join(rel, "end-of-a-very-long-path"), b"still here\n")

    # PATH_MAX-safe helpers for the long path part (dir-fd relative).
    def _open_parent(self, rel):
        parts = rel.split("/")
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        for comp in parts[:-1]:
            nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        return fd, parts[-1]

    def _mkdir_at(self, rel):
        fd, name = self._open_parent(rel)
        try:
            os.mkdir(name, 0o755, dir_fd=fd)
            os.chmod(name, 0o755, dir_fd=fd)
        finally:
            os.close(fd)
        self.longdirs = getattr(self, "longdirs", []) + [rel]

    def _file_at(self, rel, data):
        fd, name = self._open_parent(rel)
        try:
            f = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
            os.write(f, data)
            os.fchmod(f, 0o644)
            os.setxattr(f, b"user.long", b"path")
            os.close(f)
            os.utime(name, ns=(0, 1700000000 * 10**9 + 5), dir_fd=fd)
        finally:
            os.close(fd)

    def part_dedup(self):
        self.mkdir("dedup")
        pool = [self.rng.randbytes(65536) for _ in range(8)]
        pool.append(bytes(65536))   # one all-zero chunk
        nfiles = 24
        for i in range(nfiles):
            nchunks = 16
            data = b"".join(self.rng.choice(pool) for _ in range(nchunks))
            self.file("dedup/chunks/f%02d" % i, data)
        same = self.rng.randbytes(512 * 1024)
        for i in range(12):
            self.file("dedup/same/copy%02d" % i, same, mode=0o644 if i % 2 else 0o600,
                      uid=i, mtime=1700000000 * 10**9 + i)
        small = self.rng.randbytes(6000)
        for i in range(20):
            self.file("dedup/same-small/c%02d" % i, small)

    def part_sparse_huge(self):
        path = self.file("huge/sparse-5g", b"")
        with open(self.p(path), "r+b") as f:
            f.truncate(HUGE_SIZE)
            for off, data in HUGE_REGIONS:
                f.seek(off)
                f.write(data)
        self.manifest["huge"] = {"path": path, "size": HUGE_SIZE,
                                 "regions": [[o, d.hex()] for o, d in HUGE_REGIONS]}

    def part_big_dir(self, n):
        self.mkdir("bigdir")
        d = self.p("bigdir")
        names = []
        for i in range(n):
            # varied lengths so entries don't align with block boundaries
            name = "e%06d%s" % (i, "-" * (i % 13))
            names.append(name)
            fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            t = 1700000000 * 10**9 + i * 1000 + (i % 7)
            os.utime(os.path.join(d, name), ns=(t, t))
        # A few non-empty entries and subdirectories among them.
        for i in range(0, n, max(1, n // 20)):
            path = os.path.join(d, names[i])
            st = os.stat(path)
            with open(path, "wb") as f:
                f.write(b"entry %d\n" % i)
            os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns))
        self.manifest["big_dir"] = {"path": "bigdir", "entries": n}

    # ---- attributes, applied last -----------------------------------------
    def apply(self):
        # Order matters: chown clears setuid/setgid bits and security.capability,
        # setting an access ACL rewrites the group bits, writing clears caps.
        for rel, kind, mode, uid, gid, xattrs, mtime in self.meta:
            path = self.p(rel)
            os.chown(path, uid, gid, follow_symlinks=False)
            acls = [x for x in xattrs if x[0].startswith(b"system.posix_acl")]
            others = [x for x in xattrs if not x[0].startswith(b"system.posix_acl")]
            for name, value in acls:
                os.setxattr(path, name, value, follow_symlinks=False)
            if mode is not None:
                os.chmod(path, mode)
            for name, value in others:
                os.setxattr(path, name, value, follow_symlinks=False)
        # mtimes: files first, then directories deepest first.
        for rel, kind, mode, uid, gid, xattrs, mtime in self.meta:
            if kind == "dir":
                continue
            t = mtime if mtime is not None else self.rand_mtime()
            os.utime(self.p(rel), ns=(t, t), follow_symlinks=False)
        for rel in getattr(self, "longdirs", [])[::-1]:
            fd, name = self._open_parent(rel)
            os.utime(name, ns=(0, 1600000000 * 10**9 + len(rel)), dir_fd=fd)
            os.close(fd)
        dir_mtimes = {rel: mt for rel, kind, _m, _u, _g, _x, mt in self.meta if kind == "dir"}
        for rel in sorted(set(self.dirs), key=lambda r: (-r.count("/"), r)):
            t = dir_mtimes.get(rel)
            if t is None:
                t = self.rand_mtime()
            os.utime(self.p(rel), ns=(t, t), follow_symlinks=False)
        os.chmod(self.root, 0o755)
        os.chown(self.root, 0, 0)
        os.setxattr(self.root, b"user.root", b"the root directory")
        os.setxattr(self.root, b"trusted.root", b"r")
        os.utime(self.root, ns=(0, 1700000001 * 10**9 + 424242))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="fewer and smaller files")
    ap.add_argument("--parts", default="standard",
                    help="comma list of parts; 'standard' or 'none' (default standard)")
    ap.add_argument("--sparse-huge", action="store_true", help="add a 5 GiB sparse file")
    ap.add_argument("--big-dir", type=int, default=0, metavar="N",
                    help="add a directory with N entries")
    ap.add_argument("--manifest", help="write a JSON manifest of special files here")
    a = ap.parse_args()

    parts = []
    for item in a.parts.split(","):
        item = item.strip()
        if item == "standard":
            parts += STANDARD
        elif item in ("none", ""):
            continue
        elif item in STANDARD + EXTRA:
            parts.append(item)
        else:
            ap.error("unknown part %r" % item)
    if a.sparse_huge:
        parts.append("sparse-huge")
    if a.big_dir:
        parts.append("big-dir")
    if os.geteuid() != 0:
        sys.exit("gen_tree.py: must run as root")

    os.umask(0)
    os.makedirs(a.dest, exist_ok=True)
    if os.listdir(a.dest):
        sys.exit("gen_tree.py: %s is not empty" % a.dest)
    g = Gen(os.path.abspath(a.dest), a.seed, a.small)
    for part in parts:
        if part == "big-dir":
            g.part_big_dir(a.big_dir or 100000)
        else:
            getattr(g, "part_" + part.replace("-", "_"))()
    g.apply()
    if a.manifest:
        with open(a.manifest, "w") as f:
            json.dump(g.manifest, f, indent=1)


if __name__ == "__main__":
    main()
