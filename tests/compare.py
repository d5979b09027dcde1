#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compare two directory trees field by field.

    compare.py [options] SRC DST

Walks both trees (directory-fd relative, so paths longer than PATH_MAX work)
and compares for every path: the set of directory entries, file type, the 12
permission bits, uid, gid, size, mtime in nanoseconds, nlink, rdev
(major/minor), symlink target, content, every xattr name and value
(system.posix_acl_* included) and hard-link groups (the same set of paths
shares an inode on both sides).  Every difference is printed with its path;
the exit status is 1 if there was any, 0 otherwise, 2 on usage errors.

Content of files larger than --sparse-threshold is compared sparse-aware:
every data region of SRC (SEEK_DATA/SEEK_HOLE) is compared in full, and each
hole of SRC is probed in DST at its edges and at a few seeded offsets (DST may
not report holes: EROFS has no SEEK_HOLE, and reading GiBs of zeroes is slow).
"""
import argparse
import os
import random
import stat
import sys

FIELDS = ["type", "mode", "uid", "gid", "size", "mtime", "nlink", "rdev", "target",
          "content", "xattrs", "hardlinks", "entries"]
CHUNK = 1 << 20


def q(path):
    """Printable form of a bytes path."""
    s = path.decode("utf-8", "backslashreplace")
    return repr(s)[1:-1] if any(c in s for c in "\n\r\t\x7f") or not s.isprintable() else s


def ftype(mode):
    for name, test in (("dir", stat.S_ISDIR), ("reg", stat.S_ISREG), ("symlink", stat.S_ISLNK),
                       ("chr", stat.S_ISCHR), ("blk", stat.S_ISBLK), ("fifo", stat.S_ISFIFO),
                       ("sock", stat.S_ISSOCK)):
        if test(mode):
            return name
    return "unknown"


class Tree:
    def __init__(self, root):
        self.root = root
        self.entries = {}    # rel -> info dict
        self.errors = []
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            self._walk(fd, b".", os.stat(fd))
        finally:
            os.close(fd)

    @staticmethod
    def proc(fd, name):
        # xattr calls take no dir fd: go through /proc to stay PATH_MAX-safe.
        return b"/proc/self/fd/%d/%s" % (fd, name)

    def _info(self, dirfd, name, st):
        info = {"st": st, "type": ftype(st.st_mode)}
        # A directory's own xattrs through its fd; others by /proc/self/fd/N/name
        # (not following the last component: a symlink's own xattrs).
        path, follow = (dirfd, True) if name == b"." else (self.proc(dirfd, name), False)
        try:
            names = os.listxattr(path, follow_symlinks=follow)
            xa = {}
            for n in names:
                xa[n] = os.getxattr(path, n, follow_symlinks=follow)
            info["xattrs"] = xa
        except OSError as e:
            self.errors.append("listxattr: %s" % e)
            info["xattrs"] = None
        if stat.S_ISLNK(st.st_mode):
            info["target"] = os.readlink(name, dir_fd=dirfd)
        return info

    def _walk(self, dirfd, rel, st):
        info = self._info(dirfd, b".", st)
        names = sorted(os.listdir(dirfd))
        names = [os.fsencode(n) for n in names]
        info["entries"] = set(names)
        self.entries[rel] = info
        for n in names:
            child = n if rel == b"." else rel + b"/" + n
            cst = os.stat(n, dir_fd=dirfd, follow_symlinks=False)
            if stat.S_ISDIR(cst.st_mode):
                cfd = os.open(n, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dirfd)
                try:
                    self._walk(cfd, child, cst)
                finally:
                    os.close(cfd)
            else:
                self.entries[child] = self._info(dirfd, n, cst)

    def open(self, rel):
        parts = rel.split(b"/")
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for comp in parts[:-1]:
                nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = nfd
            return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
        finally:
            os.close(fd)


def data_regions(fd, size):
    """[(start, end)] of data in fd per SEEK_DATA/SEEK_HOLE."""
    out, off = [], 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:       # ENXIO: no more data
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, min(end, size)))
        off = end
    return out


def read_at(fd, off, n):
    buf = bytearray()
    while len(buf) < n:
        b = os.pread(fd, n - len(buf), off + len(buf))
        if not b:
            break
        buf += b
    return bytes(buf)


def first_diff(a, b):
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return min(len(a), len(b))


def compare_content(src, dst, size, sparse_threshold, probes):
    """None if equal, else a message."""
    try:
        if size <= sparse_threshold:
            off = 0
            while True:
                a = os.read(src, CHUNK)
                b = read_at(dst, off, len(a) if a else 1)
                if a != b:
                    i = first_diff(a, b)
                    return "differs at byte %d (src %r dst %r)" % (
                        off + i, a[i:i + 8], b[i:i + 8])
                if not a:
                    return None
                off += len(a)
        regions = data_regions(src, size)
        for s, e in regions:
            off = s
            while off < e:
                n = min(CHUNK, e - off)
                a, b = read_at(src, off, n), read_at(dst, off, n)
                if a != b:
                    i = first_diff(a, b)
                    return "differs at byte %d (src %r dst %r)" % (
                        off + i, a[i:i + 8], b[i:i + 8])
                off += n
        # holes of src: probe dst for zeroes
        holes, prev = [], 0
        for s, e in regions + [(size, size)]:
            if s > prev:
                holes.append((prev, s))
            prev = e
        rng = random.Random(size)
        for s, e in holes:
            points = [s, max(s, e - 4096)] + [rng.randrange(s, e) for _ in range(probes)]
            for p in points:
                n = min(4096, e - p)
                b = read_at(dst, p, n)
                if b != bytes(n):
                    return "hole at %d..%d of src is not zero in dst at %d" % (s, e, p)
        tail = read_at(dst, size, 1)
        if tail:
            return "dst has data past the end (%d)" % size
        return None
    except OSError as e:
        return "read error: %s" % e


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--ignore", action="append", default=[],
                    help="skip a field (%s); repeatable, or comma list" % ",".join(FIELDS))
    ap.add_argument("--content-only", action="store_true",
                    help="compare only entries, type, size, symlink target, content")
    ap.add_argument("--sparse-threshold", type=int, default=256 << 20,
                    help="files above this size are compared sparse-aware")
    ap.add_argument("--hole-probes", type=int, default=64)
    ap.add_argument("--max-report", type=int, default=200)
    ap.add_argument("-q", "--quiet", action="store_true", help="print only differences")
    a = ap.parse_args()

    ignore = set()
    for i in a.ignore:
        ignore.update(x for x in i.split(",") if x)
    bad = ignore - set(FIELDS)
    if bad:
        ap.error("unknown field(s): %s" % ", ".join(sorted(bad)))
    if a.content_only:
        ignore |= set(FIELDS) - {"type", "size", "target", "content", "entries"}

    src, dst = Tree(a.src), Tree(a.dst)
    diffs = []

    def diff(path, field, sv, dv):
        diffs.append("DIFF %s: %s: src=%s dst=%s" % (q(path), field, sv, dv))

    for e in src.errors + dst.errors:
        diffs.append("ERROR %s" % e)

    only_src = sorted(set(src.entries) - set(dst.entries))
    only_dst = sorted(set(dst.entries) - set(src.entries))
    for p in only_src:
        diffs.append("MISSING %s: only in src (%s)" % (q(p), src.entries[p]["type"]))
    for p in only_dst:
        diffs.append("EXTRA %s: only in dst (%s)" % (q(p), dst.entries[p]["type"]))

    checked = files = 0
    for p in sorted(set(src.entries) & set(dst.entries)):
        s, d = src.entries[p], dst.entries[p]
        ss, ds = s["st"], d["st"]
        checked += 1
        if s["type"] != d["type"]:
            diff(p, "type", s["type"], d["type"])
            continue
        t = s["type"]
        if "mode" not in ignore and stat.S_IMODE(ss.st_mode) != stat.S_IMODE(ds.st_mode):
            diff(p, "mode", "%04o" % stat.S_IMODE(ss.st_mode), "%04o" % stat.S_IMODE(ds.st_mode))
        if "uid" not in ignore and ss.st_uid != ds.st_uid:
            diff(p, "uid", ss.st_uid, ds.st_uid)
        if "gid" not in ignore and ss.st_gid != ds.st_gid:
            diff(p, "gid", ss.st_gid, ds.st_gid)
        if "size" not in ignore and t != "dir" and ss.st_size != ds.st_size:
            diff(p, "size", ss.st_size, ds.st_size)
        if "mtime" not in ignore and ss.st_mtime_ns != ds.st_mtime_ns:
            diff(p, "mtime", ss.st_mtime_ns, ds.st_mtime_ns)
        if "nlink" not in ignore and ss.st_nlink != ds.st_nlink:
            diff(p, "nlink", ss.st_nlink, ds.st_nlink)
        if "rdev" not in ignore and t in ("chr", "blk") and ss.st_rdev != ds.st_rdev:
            diff(p, "rdev", "%d:%d" % (os.major(ss.st_rdev), os.minor(ss.st_rdev)),
                 "%d:%d" % (os.major(ds.st_rdev), os.minor(ds.st_rdev)))
        if "target" not in ignore and t == "symlink" and s["target"] != d["target"]:
            diff(p, "target", "%r (%d bytes)" % (s["target"][:60], len(s["target"])),
                 "%r (%d bytes)" % (d["target"][:60], len(d["target"])))
        if "entries" not in ignore and t == "dir" and s["entries"] != d["entries"]:
            missing = sorted(s["entries"] - d["entries"])
            extra = sorted(d["entries"] - s["entries"])
            diff(p, "entries", "%d entries" % len(s["entries"]),
                 "%d entries, missing %s, extra %s" % (
                     len(d["entries"]), [q(x) for x in missing[:5]], [q(x) for x in extra[:5]]))
        if "xattrs" not in ignore and s["xattrs"] is not None and d["xattrs"] is not None:
            sx, dx = s["xattrs"], d["xattrs"]
            for n in sorted(set(sx) | set(dx)):
                if n not in dx:
                    diff(p, "xattr " + n, "%d bytes" % len(sx[n]), "missing")
                elif n not in sx:
                    diff(p, "xattr " + n, "missing", "%d bytes" % len(dx[n]))
                elif sx[n] != dx[n]:
                    diff(p, "xattr " + n, "%d bytes %s" % (len(sx[n]), sx[n][:24].hex()),
                         "%d bytes %s" % (len(dx[n]), dx[n][:24].hex()))
        if "content" not in ignore and t == "reg" and ss.st_size == ds.st_size:
            files += 1
            try:
                sf, df = src.open(p), dst.open(p)
            except OSError as e:
                diff(p, "content", "", "open failed: %s" % e)
                continue
            try:
                msg = compare_content(sf, df, ss.st_size, a.sparse_threshold, a.hole_probes)
            finally:
                os.close(sf)
                os.close(df)
            if msg:
                diff(p, "content", "", msg)

    if "hardlinks" not in ignore:
        def groups(tree):
            by_ino = {}
            for p, info in tree.entries.items():
                if info["type"] != "dir":
                    by_ino.setdefault(info["st"].st_ino, set()).add(p)
            out = {}
            for paths in by_ino.values():
                fz = frozenset(paths)
                for p in paths:
                    out[p] = fz
            return out
        sg, dg = groups(src), groups(dst)
        seen = set()
        for p in sorted(set(sg) & set(dg)):
            if sg[p] != dg[p] and sg[p] not in seen:
                seen.add(sg[p])
                diff(p, "hardlinks", sorted(q(x) for x in sg[p]), sorted(q(x) for x in dg[p]))

    for line in diffs[:a.max_report]:
        print(line)
    if len(diffs) > a.max_report:
        print("... and %d more differences" % (len(diffs) - a.max_report))
    if not a.quiet or diffs:
        print("compare: %d paths, %d files' content, %d differences" % (checked, files, len(diffs)))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
