#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Where the bytes of a lazy start went (bench/lazy_start.sh uses it).

    lazy_where.py IMAGE CACHE_DIR [MNT] [--top N] [--json]

IMAGE is a --blob-dir metadata image, CACHE_DIR the --cache of a mount of
it after a start (its map files say which fetch units arrived). With MNT
(the mount, still up), each file's pages resident in the page cache
(mincore(2)) are counted too: the bytes the kernel actually needed, with
its own readahead on the file. Prints, per file, the fetch units fetched
and their bytes over the wire, and what a unit's share of a resident page
would have cost ("needed": compressed bytes in proportion to the resident
part of each unit fetched).
"""
import ctypes
import ctypes.util
import json
import mmap
import os
import stat
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from erofs_img import Image  # noqa: E402

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
PAGE = os.sysconf("SC_PAGE_SIZE")


def device_tags(img):
    """{device id: blob hex} from the EROFS device table (slot: tag[64] first)."""
    base = img.devt_slotoff * 128
    return {i + 1: bytes(img.data[base + 128 * i:base + 128 * i + 64]).decode()
            for i in range(img.extra_devices)}


def resident(path, size):
    """Bytes of the file's pages in the page cache (0 if it cannot be mapped)."""
    if size == 0:
        return 0, []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return 0, []
    try:
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            return 0, []
        n = (size + PAGE - 1) // PAGE
        vec = ctypes.create_string_buffer(n)
        ok = libc.mincore(addr, size, vec) == 0
        libc.munmap(addr, size)
        if not ok:
            return 0, []
        pages = [i for i in range(n) if vec.raw[i] & 1]
        return sum(min(PAGE, size - i * PAGE) for i in pages), pages
    finally:
        os.close(fd)


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    top = 25
    if "--top" in argv:
        top = int(argv[argv.index("--top") + 1])
        args.remove(str(top))
    as_json = "--json" in argv
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    image, cache = args[0], args[1]
    mnt = args[2] if len(args) > 2 else None
    img = Image(image)
    units_of = img.chunk_tables()
    if not units_of:
        sys.exit("%s: no anole chunk table" % image)
    tags = device_tags(img)
    fetched = {}     # (devid, unit index) -> True
    total_c = 0
    for devid, units in units_of.items():
        total_c += sum(u[3] for u in units)
        mp = os.path.join(cache, tags[devid], "map")
        bits = open(mp, "rb").read() if os.path.exists(mp) else b""
        for k in range(len(units)):
            if k // 8 < len(bits) and bits[k // 8] >> (k % 8) & 1:
                fetched[(devid, k)] = True
    starts = {d: [u[0] for u in us] for d, us in units_of.items()}

    import bisect
    owner = {}       # unit -> first path using it
    files = []
    for path, nid in img.walk():
        ino = img.inode(nid)
        if not stat.S_ISREG(ino.mode) or ino.layout != 4:
            continue
        p = path.decode("utf-8", "surrogateescape")
        ext = img.extents(ino)
        res_bytes, res_pages = (0, [])
        if mnt:
            res_bytes, res_pages = resident(os.path.join(mnt, p), ino.size)
        res_set = set(res_pages)
        rec = {"path": p, "size": ino.size, "units": 0, "units_fetched": 0,
               "fetched": 0, "resident": res_bytes, "needed": 0.0}
        for log, ln, dev, phys in ext:
            if phys is None or dev == 0:
                continue
            us = units_of[dev]
            k = bisect.bisect_right(starts[dev], phys) - 1
            while 0 <= k < len(us) and us[k][0] < phys + ln:
                uoff, usize, _coff, csize = us[k]
                rec["units"] += 1
                if fetched.get((dev, k)) and (dev, k) not in owner:
                    owner[(dev, k)] = p
                    rec["units_fetched"] += 1
                    rec["fetched"] += csize
                    # resident pages of this unit, mapped back to the file
                    lo = max(uoff, phys) - phys + log
                    hi = min(uoff + usize, phys + ln) - phys + log
                    pin = sum(1 for pg in range(lo // PAGE, (hi + PAGE - 1) // PAGE) if pg in res_set)
                    npg = max(1, (hi - lo + PAGE - 1) // PAGE)
                    rec["needed"] += csize * min(1.0, pin / npg)
                k += 1
        if rec["units_fetched"] or res_bytes:
            files.append(rec)
    got = sum(u[3] for (d, k) in fetched for u in [units_of[d][k]])
    files.sort(key=lambda r: -r["fetched"])
    summary = {"blob_bytes": total_c, "fetched_bytes": got, "units_fetched": len(fetched),
               "files_touched": len(files),
               "needed_bytes": int(sum(r["needed"] for r in files)) if mnt else None,
               "resident_bytes": sum(r["resident"] for r in files) if mnt else None,
               "unattributed_bytes": got - sum(r["fetched"] for r in files)}
    if as_json:
        print(json.dumps({"summary": summary, "files": files}))
        return 0
    print("fetched %d bytes in %d units of %d (%.2f%% of %d), %d files" %
          (got, len(fetched), sum(len(u) for u in units_of.values()), 100.0 * got / total_c,
           total_c, len(files)))
    if mnt:
        print("resident in the page cache: %d bytes; needed (compressed, pro rata of resident"
              " pages per unit): %d bytes (%.2f%%)" % (summary["resident_bytes"],
                                                       summary["needed_bytes"],
                                                       100.0 * summary["needed_bytes"] / total_c))
    print("%10s %10s %6s %10s %10s  %s" % ("fetched", "needed", "units", "size", "resident", "path"))
    for r in files[:top]:
        print("%10d %10d %3d/%-3d %10d %10d  %s" % (r["fetched"], r["needed"], r["units_fetched"],
                                                    r["units"], r["size"], r["resident"], r["path"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
