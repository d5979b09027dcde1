#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Read everything on a mounted tree through the kernel.

    readall.py MNT [--max-bytes N] [--max-entries N]

Walks MNT (each directory once, by inode), and for every entry: lstat,
listxattr + getxattr of every name, readlink of symlinks, a full read of
regular files.  Any failing system call (EIO, EUCLEAN = "Structure needs
cleaning", ...) is printed with its path and errno; exit status 1 if there
was one, 0 otherwise.  Limits keep a corrupted image from running away.
"""
import argparse
import errno
import os
import stat
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mnt")
    ap.add_argument("--max-bytes", type=int, default=512 << 20)
    ap.add_argument("--max-entries", type=int, default=300000)
    a = ap.parse_args()
    errors, counts = read_tree(a.mnt, a.max_bytes, a.max_entries)
    for e in errors[:50]:
        print("KERNEL-ERROR", e if isinstance(e, str) else e)
    print("readall: %d entries, %d bytes, %d xattrs, %d errors" % (
        counts["entries"], counts["bytes"], counts["xattrs"], len(errors)))
    return 1 if errors else 0


def read_tree(mnt, max_bytes=512 << 20, max_entries=300000):
    """(errors, counts) of reading everything below mnt; importable, so
    that a caller mounting many images saves a process per image."""
    a = argparse.Namespace(mnt=mnt, max_bytes=max_bytes, max_entries=max_entries)
    errors = []
    counts = {"entries": 0, "bytes": 0, "xattrs": 0}
    seen_dirs = set()

    def err(path, what, e):
        if isinstance(path, bytes):
            path = path.decode("utf-8", "backslashreplace")
        errors.append("%s: %s: %s (%s)" % (path, what, e.strerror,
                                           errno.errorcode.get(e.errno, e.errno)))

    def visit(path, st):
        counts["entries"] += 1
        try:
            for n in os.listxattr(path, follow_symlinks=False):
                os.getxattr(path, n, follow_symlinks=False)
                counts["xattrs"] += 1
        except OSError as e:
            err(path, "xattrs", e)
        if stat.S_ISLNK(st.st_mode):
            try:
                os.readlink(path)
            except OSError as e:
                err(path, "readlink", e)
        elif stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
                try:
                    while counts["bytes"] < a.max_bytes:
                        b = os.read(fd, 1 << 20)
                        if not b:
                            break
                        counts["bytes"] += len(b)
                finally:
                    os.close(fd)
            except OSError as e:
                err(path, "read", e)

    stack = [a.mnt.encode()]
    try:
        st = os.lstat(a.mnt)
        visit(a.mnt.encode(), st)
        seen_dirs.add(st.st_ino)
    except OSError as e:
        err(a.mnt, "lstat", e)
        stack = []
    while stack and counts["entries"] < a.max_entries:
        d = stack.pop()
        try:
            names = os.listdir(d)
        except OSError as e:
            err(d.decode(errors="replace"), "readdir", e)
            continue
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except OSError as e:
                err(p.decode(errors="replace"), "lstat", e)
                continue
            visit(p, st)
            if stat.S_ISDIR(st.st_mode) and st.st_ino not in seen_dirs:
                seen_dirs.add(st.st_ino)
                stack.append(p)
    return errors, counts


if __name__ == "__main__":
    sys.exit(main())
