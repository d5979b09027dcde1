#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Readers for lazy-mount tests (tests/t_lazy_*.sh).

    lazy_check.py make-files DIR N [--seed S] [--min BYTES] [--max BYTES]
        N files DIR/fNN of random, incompressible, pairwise distinct bytes
        (no 4 KiB block is shared between them, so no chunk is deduplicated
        across files): each file's chunks reach the blob only through it.

    lazy_check.py read SRC MNT [REL...] [--list FILE] [--allow-eio]
                       [--expect-eio] [--json]
        Read each file REL (relative to SRC and MNT; all regular files of SRC
        when none is given) in 128 KiB pieces and compare with SRC.  Wrong
        bytes (or a short/long file) always fail.  EIO fails unless
        --allow-eio; --expect-eio wants every listed file to give EIO.
        Prints "good N eio N" (or JSON).

    lazy_check.py stress SRC MNT [--threads 16] [--seconds 8] [--seed S]
        Threads reading random byte ranges of random regular files and
        comparing every byte with SRC, interleaved with lstat of random
        paths (compared: type, mode, size, uid, gid, mtime) and listdir of
        random directories (compared as sets).  Any difference or error
        fails.  Prints the counts.

    lazy_check.py drop PATH...
        Drop the page cache of each file (posix_fadvise DONTNEED).

Exit status: 0 fine, 1 a check failed, 2 usage.
"""
import argparse
import errno
import json
import os
import random
import stat
import sys
import threading
import time

PIECE = 128 << 10


def regular_files(src):
    out = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for n in sorted(files):
            p = os.path.join(root, n)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                out.append(os.path.relpath(p, src))
    return out


def cmd_make_files(a):
    rng = random.Random(a.seed)
    os.makedirs(a.dir, exist_ok=True)
    for i in range(a.n):
        size = rng.randint(a.min, a.max)
        data = rng.randbytes(size)
        with open(os.path.join(a.dir, "f%02d" % i), "wb") as f:
            f.write(data)
    return 0


def read_compare(src_path, mnt_path):
    """None if equal; 'EIO' on EIO; raises on other errors; a message on a mismatch."""
    with open(src_path, "rb") as s:
        want = s.read()
    try:
        fd = os.open(mnt_path, os.O_RDONLY)
    except OSError as e:
        if e.errno == errno.EIO:
            return "EIO"
        raise
    try:
        off = 0
        while True:
            try:
                got = os.pread(fd, PIECE, off)
            except OSError as e:
                if e.errno == errno.EIO:
                    return "EIO"
                raise
            if not got:
                break
            if got != want[off:off + len(got)]:
                for k in range(len(got)):
                    if off + k >= len(want) or got[k] != want[off + k]:
                        return "WRONG BYTES at offset %d (got %r, want %r)" % (
                            off + k, got[k:k + 8], want[off + k:off + k + 8])
            off += len(got)
        if off != len(want):
            return "WRONG LENGTH: read %d bytes, want %d" % (off, len(want))
    finally:
        os.close(fd)
    return None


def cmd_read(a):
    rels = list(a.rel)
    if a.list:
        with open(a.list) as f:
            rels += [l.strip().lstrip("/") for l in f if l.strip() and not l.startswith("#")]
    if not rels:
        rels = regular_files(a.src)
    good = eio = 0
    bad = []
    for rel in rels:
        try:
            r = read_compare(os.path.join(a.src, rel), os.path.join(a.mnt, rel))
        except OSError as e:
            bad.append("%s: %s" % (rel, e))
            continue
        if r is None:
            good += 1
        elif r == "EIO":
            eio += 1
            if not a.allow_eio and not a.expect_eio:
                bad.append("%s: EIO" % rel)
        else:
            bad.append("%s: %s" % (rel, r))
    if a.expect_eio and eio != len(rels):
        bad.append("%d of %d files gave EIO, expected all" % (eio, len(rels)))
    if a.json:
        print(json.dumps({"good": good, "eio": eio, "bad": bad}))
    else:
        print("good %d eio %d" % (good, eio))
    for b in bad:
        print("lazy_check: " + b, file=sys.stderr)
    return 1 if bad else 0


def snap(st):
    return (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
            st.st_uid, st.st_gid, st.st_mtime_ns)


def cmd_stress(a):
    files, dirs, paths = [], [], []
    sizes = {}
    for root, ds, fs in os.walk(a.src):
        rel_root = os.path.relpath(root, a.src)
        dirs.append(rel_root)
        for n in ds + fs:
            rel = os.path.normpath(os.path.join(rel_root, n))
            paths.append(rel)
            st = os.lstat(os.path.join(a.src, rel))
            if stat.S_ISREG(st.st_mode) and st.st_size:
                files.append(rel)
                sizes[rel] = st.st_size
    if not files:
        print("lazy_check: no regular files in " + a.src, file=sys.stderr)
        return 1
    # source bytes, read once (file contents are compared byte by byte)
    cache = {}
    lock = threading.Lock()
    errors = []
    counts = {"reads": 0, "bytes": 0, "stats": 0, "listdirs": 0}
    deadline = time.monotonic() + a.seconds
    start = threading.Barrier(a.threads)

    def src_bytes(rel):
        with lock:
            b = cache.get(rel)
        if b is None:
            with open(os.path.join(a.src, rel), "rb") as f:
                b = f.read()
            with lock:
                cache[rel] = b
        return b

    def worker(k):
        rng = random.Random(a.seed * 1000 + k)
        n = {"reads": 0, "bytes": 0, "stats": 0, "listdirs": 0}
        start.wait()
        try:
            while time.monotonic() < deadline and not errors:
                op = rng.random()
                if op < 0.7:
                    rel = rng.choice(files)
                    size = sizes[rel]
                    off = rng.randrange(size)
                    ln = rng.choice((1, 7, 4096, 65536, 131072, 300000, size))
                    want = src_bytes(rel)[off:off + ln]
                    fd = os.open(os.path.join(a.mnt, rel), os.O_RDONLY)
                    try:
                        got = b""
                        while len(got) < len(want):
                            piece = os.pread(fd, len(want) - len(got), off + len(got))
                            if not piece:
                                break
                            got += piece
                    finally:
                        os.close(fd)
                    if got != want:
                        errors.append("%s: bytes %d+%d differ (got %d bytes)" % (rel, off, ln, len(got)))
                    n["reads"] += 1
                    n["bytes"] += len(got)
                elif op < 0.9:
                    rel = rng.choice(paths)
                    s = os.lstat(os.path.join(a.src, rel))
                    m = os.lstat(os.path.join(a.mnt, rel))
                    if snap(s) != snap(m):
                        errors.append("%s: lstat %r != %r" % (rel, snap(m), snap(s)))
                    n["stats"] += 1
                else:
                    rel = rng.choice(dirs)
                    s = set(os.listdir(os.path.join(a.src, rel)))
                    m = set(os.listdir(os.path.join(a.mnt, rel)))
                    if s != m:
                        errors.append("%s: entries differ: %d missing, %d extra" % (
                            rel, len(s - m), len(m - s)))
                    n["listdirs"] += 1
        except OSError as e:
            errors.append("thread %d: %s" % (k, e))
        with lock:
            for key in n:
                counts[key] += n[key]

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("stress: %d threads, %d reads (%d bytes compared), %d lstats, %d listdirs" % (
        a.threads, counts["reads"], counts["bytes"], counts["stats"], counts["listdirs"]))
    for e in errors[:20]:
        print("lazy_check: " + e, file=sys.stderr)
    if not errors and counts["reads"] < a.threads:
        print("lazy_check: too few reads", file=sys.stderr)
        return 1
    return 1 if errors else 0


def cmd_drop(a):
    for p in a.paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("make-files")
    p.add_argument("dir")
    p.add_argument("n", type=int)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min", type=int, default=640 << 10)
    p.add_argument("--max", type=int, default=1 << 20)
    p = sub.add_parser("read")
    p.add_argument("src")
    p.add_argument("mnt")
    p.add_argument("rel", nargs="*")
    p.add_argument("--list")
    p.add_argument("--allow-eio", action="store_true")
    p.add_argument("--expect-eio", action="store_true")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("stress")
    p.add_argument("src")
    p.add_argument("mnt")
    p.add_argument("--threads", type=int, default=16)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("drop")
    p.add_argument("paths", nargs="+")
    a = ap.parse_args()
    return {"make-files": cmd_make_files, "read": cmd_read, "stress": cmd_stress,
            "drop": cmd_drop}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
