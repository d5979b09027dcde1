#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A small, independent EROFS reader for tests (uncompressed images).

Used to find where an image keeps its metadata (so corruption tests hit
structures, not file data), to locate dirent names for crafting hostile
images, and to recompute the superblock checksum after an edit.  It trusts
the image: run it on images a builder produced, not on corrupted ones.

    erofs_img.py IMAGE sb                 superblock fields (JSON)
    erofs_img.py IMAGE ls                 every path with nid, mode, size
    erofs_img.py IMAGE meta               metadata byte ranges (JSON)
    erofs_img.py IMAGE rename DIR OLD NEW rename a dirent in place (same
                                          length), fixing the sb checksum
    erofs_img.py IMAGE fixsum             recompute the sb checksum if enabled
    erofs_img.py IMAGE units PATH[:OFF+LEN]...
                                          the chunk-table entries (--blob-dir
                                          images: chunks or fetch units) that
                                          hold those files or byte ranges of
                                          them (JSON: count, compressed bytes)
"""
import json
import stat
import struct
import sys

EROFS_MAGIC = 0xE0F5E1E2
SB_OFF = 1024
NULL_ADDR = 0xFFFFFFFF
COMPAT_SB_CHKSUM = 0x1
INCOMPAT_48BIT = 0x80
FLAT_PLAIN, COMPRESSED_FULL, FLAT_INLINE, COMPRESSED_COMPACT, CHUNK_BASED = 0, 1, 2, 3, 4
XATTR_PREFIX = {1: b"user.", 2: b"system.posix_acl_access", 3: b"system.posix_acl_default",
                4: b"trusted.", 5: b"lustre.", 6: b"security."}

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c_raw(data, crc=0xFFFFFFFF):
    """CRC32C without final inversion (what EROFS stores)."""
    t = _CRC_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


class Inode:
    pass


class Image:
    def __init__(self, path, data=None):
        self.path = path
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
        self.data = bytearray(data)
        sb = self.data[SB_OFF:SB_OFF + 128]
        (self.magic, self.checksum, self.feature_compat, self.blkszbits, self.sb_extslots,
         self.root_nid16, self.inos, self.epoch, self.fixed_nsec, self.blocks,
         self.meta_blkaddr, self.xattr_blkaddr) = struct.unpack_from("<IIIBBHQQIIII", sb, 0)
        if self.magic != EROFS_MAGIC:
            raise ValueError("%s: not an EROFS image (magic %#x)" % (path, self.magic))
        self.uuid = bytes(sb[48:64])
        self.volume_name = bytes(sb[64:80]).rstrip(b"\0")
        (self.feature_incompat, self.u1, self.extra_devices, self.devt_slotoff,
         self.dirblkbits, self.xattr_prefix_count, self.xattr_prefix_start,
         self.packed_nid) = struct.unpack_from("<IHHHBBIQ", sb, 80)
        self.rootnid_8b = struct.unpack_from("<Q", sb, 112)[0]
        self.bs = 1 << self.blkszbits
        self.is48 = bool(self.feature_incompat & INCOMPAT_48BIT)
        self.root_nid = self.rootnid_8b if self.is48 and self.rootnid_8b else self.root_nid16
        self.sb_size = 128 + 16 * self.sb_extslots
        self._inodes = {}

    def sb_dict(self):
        return {k: getattr(self, k) for k in (
            "magic", "checksum", "feature_compat", "blkszbits", "sb_extslots", "root_nid",
            "inos", "epoch", "fixed_nsec", "blocks", "meta_blkaddr", "xattr_blkaddr",
            "feature_incompat", "extra_devices", "devt_slotoff", "dirblkbits",
            "xattr_prefix_count", "packed_nid")} | {"uuid": self.uuid.hex(),
                                                   "volume_name": self.volume_name.decode("latin1")}

    # ---------------------------------------------------------------- inodes
    def iloc(self, nid):
        return self.meta_blkaddr * self.bs + nid * 32

    def inode(self, nid):
        if nid in self._inodes:
            return self._inodes[nid]
        off = self.iloc(nid)
        d = self.data
        fmt, icount, mode, nb = struct.unpack_from("<HHHH", d, off)
        ino = Inode()
        ino.nid, ino.off, ino.format, ino.xattr_icount, ino.mode = nid, off, fmt, icount, mode
        ino.extended = bool(fmt & 1)
        ino.layout = (fmt >> 1) & 7
        if ino.extended:
            (ino.size, ino.u, ino.ino, ino.uid, ino.gid, ino.mtime, ino.mtime_nsec,
             ino.nlink) = struct.unpack_from("<QIIIIQII", d, off + 8)
            ino.isize = 64
            hi = nb if self.is48 else 0
        else:
            ino.size, ino.mtime, ino.u, ino.ino, ino.uid, ino.gid = struct.unpack_from(
                "<IIIIHH", d, off + 8)
            ino.isize = 32
            nlink1 = bool(fmt & 0x10) and self.is48 and not stat.S_ISDIR(mode)
            ino.nlink = 1 if nlink1 else nb
            hi = nb if nlink1 else 0
            ino.mtime_nsec = self.fixed_nsec
            ino.mtime += self.epoch if self.is48 else 0
        ino.startblk = ino.u | (hi << 32)
        ino.xattr_size = 0 if icount == 0 else 12 + 4 * (icount - 1)
        ino.end = off + ino.isize + ino.xattr_size
        self._inodes[nid] = ino
        return ino

    # ---------------------------------------------------------------- data
    def extents(self, ino):
        """[(logical, length, device, phys_byte_offset or None)] covering i_size."""
        size, bs, out = ino.size, self.bs, []
        if ino.layout in (FLAT_PLAIN, FLAT_INLINE):
            nblocks = (size + bs - 1) // bs
            inline = ino.layout == FLAT_INLINE and nblocks > 0
            full = nblocks - 1 if inline else nblocks
            if full:
                start = ino.startblk
                out.append((0, min(full * bs, size), 0,
                            None if start == NULL_ADDR else start * bs))
            if inline:
                out.append((full * bs, size - full * bs, 0, ino.end))
            return out
        if ino.layout == CHUNK_BASED:
            cfmt = ino.u & 0xFFFF
            chunkbits = self.blkszbits + (cfmt & 0x1F)
            csize = 1 << chunkbits
            unit = 8 if cfmt & 0x20 else 4
            base = (ino.end + unit - 1) // unit * unit
            n = (size + csize - 1) >> chunkbits
            ino.chunk_index = (base, n * unit)
            for i in range(n):
                if unit == 4:
                    blk = struct.unpack_from("<I", self.data, base + 4 * i)[0]
                    dev, hole = 0, blk == NULL_ADDR
                else:
                    hi, dev, lo = struct.unpack_from("<HHI", self.data, base + 8 * i)
                    blk = lo | (hi << 32 if cfmt & 0x40 else 0)
                    hole = lo == NULL_ADDR
                ln = min(csize, size - (i << chunkbits))
                out.append((i << chunkbits, ln, dev, None if hole else blk * bs))
            return out
        raise NotImplementedError("layout %d (compressed) of nid %d" % (ino.layout, ino.nid))

    def read(self, ino):
        buf = bytearray()
        for _log, ln, dev, phys in self.extents(ino):
            if phys is None:
                buf += bytes(ln)
            elif dev != 0:
                raise NotImplementedError("data on device %d" % dev)
            else:
                buf += self.data[phys:phys + ln]
        return bytes(buf)

    def phys_of(self, ino, logical):
        for log, ln, dev, phys in self.extents(ino):
            if log <= logical < log + ln:
                if dev != 0 or phys is None:
                    return None
                return phys + logical - log
        return None

    # ---------------------------------------------------------------- dirs
    def dirents(self, ino):
        """[(name, nid, ftype, name_logical_off, dirent_logical_off)]"""
        data, bs, out = self.read(ino), self.bs, []
        for bstart in range(0, len(data), bs):
            blk = data[bstart:bstart + bs]
            nameoff0 = struct.unpack_from("<H", blk, 8)[0]
            n = nameoff0 // 12
            ents = [struct.unpack_from("<QHBB", blk, 12 * i) for i in range(n)]
            for i, (nid, nameoff, ftype, _r) in enumerate(ents):
                if i + 1 < n:
                    end = ents[i + 1][1]
                else:
                    end = len(blk)
                    z = blk.find(b"\0", nameoff)
                    if 0 <= z < end:
                        end = z
                out.append((bytes(blk[nameoff:end]), nid, ftype, bstart + nameoff, bstart + 12 * i))
        return out

    def walk(self):
        """Yield (path, nid) for every path, root first (paths are bytes)."""
        seen_dirs = set()
        stack = [(b"", self.root_nid)]
        while stack:
            path, nid = stack.pop()
            yield path or b".", nid
            ino = self.inode(nid)
            if stat.S_ISDIR(ino.mode):
                if nid in seen_dirs:
                    continue
                seen_dirs.add(nid)
                for name, cnid, _ft, _no, _do in reversed(self.dirents(ino)):
                    if name in (b".", b".."):
                        continue
                    stack.append((path + b"/" + name if path else name, cnid))

    def lookup(self, path):
        nid = self.root_nid
        for comp in [c for c in path.split(b"/") if c and c != b"."]:
            ino = self.inode(nid)
            for name, cnid, _ft, _no, _do in self.dirents(ino):
                if name == comp:
                    nid = cnid
                    break
            else:
                raise KeyError(path)
        return nid

    # ---------------------------------------------------------------- xattrs
    def _xattr_entry(self, off):
        nlen, idx, vsize = struct.unpack_from("<BBH", self.data, off)
        name = bytes(self.data[off + 4:off + 4 + nlen])
        value = bytes(self.data[off + 4 + nlen:off + 4 + nlen + vsize])
        total = (4 + nlen + vsize + 3) // 4 * 4
        return XATTR_PREFIX.get(idx, b"?%d?" % idx) + name, value, total

    def xattrs(self, ino):
        """(dict name->value, [shared entry (offset, length)])"""
        out, shared = {}, []
        if not ino.xattr_size:
            return out, shared
        base = ino.off + ino.isize
        count = self.data[base + 4]
        for i in range(count):
            sid = struct.unpack_from("<I", self.data, base + 12 + 4 * i)[0]
            off = self.xattr_blkaddr * self.bs + 4 * sid
            n, v, total = self._xattr_entry(off)
            out[n] = v
            shared.append((off, total))
        off, end = base + 12 + 4 * count, base + ino.xattr_size
        while off < end:
            n, v, total = self._xattr_entry(off)
            out[n] = v
            off += total
        return out, shared

    # ---------------------------------------------------------------- metadata
    def metadata_regions(self):
        """[(start, end, label)] of device 0 holding metadata: superblock,
        device table, inodes with xattr bodies, shared xattrs, chunk indexes,
        directory contents and symlink targets (not regular file data)."""
        r = [(SB_OFF, SB_OFF + self.sb_size, "superblock")]
        if self.extra_devices:
            s = self.devt_slotoff * 128
            r.append((s, s + 128 * self.extra_devices, "device table"))
        paths = {}
        for p, nid in self.walk():
            paths.setdefault(nid, p)
        for nid, p in paths.items():
            ino = self.inode(nid)
            what = "nid %d (%s)" % (nid, p.decode("utf-8", "backslashreplace"))
            r.append((ino.off, ino.off + ino.isize, "inode " + what))
            if ino.xattr_size:
                r.append((ino.off + ino.isize, ino.end, "xattr body of " + what))
            _x, shared = self.xattrs(ino)
            r += [(o, o + ln, "shared xattr of " + what) for o, ln in shared]
            ext = self.extents(ino) if ino.layout in (FLAT_PLAIN, FLAT_INLINE, CHUNK_BASED) else []
            if ino.layout == CHUNK_BASED:
                s, ln = ino.chunk_index
                r.append((s, s + ln, "chunk index of " + what))
            if stat.S_ISDIR(ino.mode) or stat.S_ISLNK(ino.mode):
                kind = "dirents of " if stat.S_ISDIR(ino.mode) else "symlink target of "
                r += [(p0, p0 + ln, kind + what) for _l, ln, dev, p0 in ext
                      if p0 is not None and dev == 0]
        return sorted(x for x in r if x[1] > x[0])

    def metadata_ranges(self):
        """Sorted, merged [start, end) byte ranges of metadata_regions()."""
        merged = []
        for s, e, _label in self.metadata_regions():
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged

    def what_is(self, off):
        """Labels of the metadata regions holding byte off."""
        return [lab for s, e, lab in self.metadata_regions() if s <= off < e] or ["not metadata"]

    # ---------------------------------------------------------------- edits
    def compute_checksum(self):
        bs = self.bs
        end = bs if bs > SB_OFF else SB_OFF + bs
        region = bytearray(self.data[SB_OFF:end])
        region[4:8] = b"\0\0\0\0"
        return crc32c_raw(region)

    def fix_checksum(self):
        if self.feature_compat & COMPAT_SB_CHKSUM:
            struct.pack_into("<I", self.data, SB_OFF + 4, self.compute_checksum())

    def rename(self, dirpath, old, new):
        if len(old) != len(new):
            raise ValueError("rename keeps the length")
        ino = self.inode(self.lookup(dirpath))
        for name, _nid, _ft, noff, _do in self.dirents(ino):
            if name == old:
                phys = self.phys_of(ino, noff)
                if phys is None:
                    raise ValueError("dirent not on the primary device")
                self.data[phys:phys + len(new)] = new
                self._inodes.clear()
                self.fix_checksum()
                return phys
        raise KeyError(old)

    # ---------------------------------------------------------------- chunk table
    def chunk_tables(self):
        """{device_id: [(uoff, usize, coff, csize)]} of the anole extension
        (docs/image-format.md), or {} for a plain EROFS image."""
        d = self.data
        if len(d) < 64 or d[-64:-56] != b"ANOLEXT1":
            return {}
        ext_off, ext_size = struct.unpack_from("<QQ", d, len(d) - 56)
        ext = d[ext_off:ext_off + ext_size]
        nblobs = struct.unpack_from("<I", ext, 12)[0]
        out = {}
        for i in range(nblobs):
            toff, nchunks, _csz, devid = struct.unpack_from("<QIIH", ext, 64 + 104 * i + 48)
            out[devid] = [struct.unpack_from("<QQII", ext, toff + 64 * k) for k in range(nchunks)]
            out[devid] = [(u, us, c, cs) for u, c, us, cs in out[devid]]
        return out

    def units_of(self, path, start=0, length=None):
        """Set of (device, entry index) holding bytes [start, start+length) of path."""
        import bisect
        tables = self.chunk_tables()
        starts = {dev: [e[0] for e in t] for dev, t in tables.items()}
        ino = self.inode(self.lookup(path))
        end = ino.size if length is None else min(ino.size, start + length)
        got = set()
        for log, ln, dev, phys in self.extents(ino):
            lo, hi = max(log, start), min(log + ln, end)
            if phys is None or dev == 0 or lo >= hi:
                continue
            plo, phi = phys + lo - log, phys + hi - log
            t = tables[dev]
            k = max(0, bisect.bisect_right(starts[dev], plo) - 1)
            while k < len(t) and t[k][0] < phi:
                if t[k][0] + t[k][1] > plo:
                    got.add((dev, k))
                k += 1
        return got

    def save(self, path=None):
        with open(path or self.path, "wb") as f:
            f.write(self.data)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    img = Image(argv[0])
    cmd = argv[1]
    if cmd == "sb":
        print(json.dumps(img.sb_dict(), indent=1))
    elif cmd == "ls":
        for path, nid in img.walk():
            ino = img.inode(nid)
            print("%8d %06o %10d %s" % (nid, ino.mode, ino.size,
                                        path.decode("utf-8", "backslashreplace")))
    elif cmd == "meta":
        ranges = img.metadata_ranges()
        print(json.dumps({"blocks": img.blocks, "block_size": img.bs,
                          "metadata_bytes": sum(e - s for s, e in ranges),
                          "ranges": ranges}))
    elif cmd == "rename" and len(argv) == 5:
        off = img.rename(argv[2].encode(), argv[3].encode("utf-8", "surrogateescape"),
                         argv[4].encode("utf-8", "surrogateescape"))
        img.save()
        print(off)
    elif cmd == "units":
        got = set()
        for spec in argv[2:]:
            path, _, rng = spec.rpartition(":") if "+" in spec.rpartition(":")[2] else (spec, "", "")
            off, ln = (int(x) for x in rng.split("+")) if rng else (0, None)
            got |= img.units_of(path.encode("utf-8", "surrogateescape"), off, ln)
        tables = img.chunk_tables()
        print(json.dumps({"count": len(got), "bytes": sum(tables[d][k][3] for d, k in got),
                          "uncompressed": sum(tables[d][k][1] for d, k in got)}))
    elif cmd == "fixsum":
        img.fix_checksum()
        img.save()
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
