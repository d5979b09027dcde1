#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Single-byte metadata corruptions: `anole image check` against the kernel.

    corrupt.py --anole BIN --image IMG [--device BLOB] --work DIR
               [--iterations N] [--seed S] [--budget SECONDS] [--sweep-superblock]

For each iteration, one byte of IMG's metadata (superblock, device table,
inodes, xattr bodies, shared xattrs, chunk indexes, dirents, symlink
targets, as found by erofs_img.py in the pristine image) is replaced (random
XOR, 0x00, 0xff or one flipped bit; 10% in the superblock, 60% in the
first 64 bytes of a randomly chosen structure, 30% anywhere); when the image has a superblock
checksum, two thirds of the corruptions of block 0 are resealed with a
correct checksum so that the structure checks behind it are reached.

Then `anole image check` must exit 0 or 1: a sanitizer report (exit 99),
a signal, another status or a hang is a failure.  When check says the image
is sound (0), the kernel must agree: the image must mount (file-backed,
with the blob as device=) and readall.py must read every entry, xattr,
symlink and byte without an error; otherwise that is a failure too.
Failing images are kept in DIR as fail-N.erofs with the details printed.

--sweep-superblock replaces the random choice by every byte of the
superblock (the checksum itself aside), inverted (every field and flag
bit changes, a zero field becomes non-zero) and always resealed, under the
same rule: check refuses whatever the kernel refuses to mount or read.
"""
import argparse
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import erofs_img  # noqa: E402
import kmount     # noqa: E402
import readall    # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def _kmsg():
    try:
        out = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
    except Exception:
        return []
    lines = []
    for line in out.splitlines():
        try:
            ts = float(line[1:line.index("]")])
        except ValueError:
            continue
        lines.append((ts, line))
    return lines


def kmsg_mark():
    lines = _kmsg()
    return lines[-1][0] if lines else 0.0


def dmesg_since(mark, n=4):
    """EROFS kernel messages logged after mark (the ring buffer wraps, so
    this goes by timestamp), routine mount/umount lines left out."""
    return [line for ts, line in _kmsg() if ts > mark and "erofs" in line.lower()
            and "mounted with root inode" not in line and "unmounted" not in line][-n:]


class Mounter:
    """File-backed mount(2); if the kernel refuses that for the pristine
    image, util-linux loop mounts with the blob on a loop device."""

    def __init__(self, mnt, device):
        self.mnt, self.device, self.loop_blob, self.mode = mnt, device, None, "file"

    def choose(self, image):
        try:
            self.mount(image)
            self.umount()
        except OSError as e:
            print("file-backed mount failed (%s); using loop devices" % e)
            self.mode = "loop"
            if self.device:
                self.loop_blob = subprocess.run(
                    ["losetup", "-f", "--show", "-r", self.device],
                    capture_output=True, text=True, check=True).stdout.strip()
            self.mount(image)
            self.umount()

    def mount(self, image):
        if self.mode == "file":
            kmount.mount(image, self.mnt, [self.device] if self.device else [])
            return
        opts = "ro" + (",device=" + self.loop_blob if self.loop_blob else "")
        r = subprocess.run(["mount", "-t", "erofs", "-o", opts, image, self.mnt],
                           capture_output=True, text=True)
        if r.returncode:
            raise OSError(0, "mount: " + r.stderr.strip())

    def umount(self):
        for _ in range(10):
            try:
                kmount.umount(self.mnt)
                return
            except OSError:
                time.sleep(0.2)
        kmount.umount(self.mnt, lazy=True)

    def close(self):
        if self.loop_blob:
            subprocess.run(["losetup", "-d", self.loop_blob])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--anole", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--device")
    ap.add_argument("--work", required=True)
    ap.add_argument("--iterations", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=120, help="stop after this many seconds")
    ap.add_argument("--check-timeout", type=float, default=60)
    ap.add_argument("--sweep-superblock", action="store_true",
                    help="instead of random corruptions: every superblock byte but the "
                         "checksum, inverted (XOR 0xff), resealed")
    a = ap.parse_args()

    rng = random.Random(a.seed)
    pristine = open(a.image, "rb").read()
    img = erofs_img.Image(a.image, pristine)
    ranges = img.metadata_ranges()
    regions = img.metadata_regions()
    sb_range = (erofs_img.SB_OFF, erofs_img.SB_OFF + img.sb_size)
    total = sum(e - s for s, e in ranges)
    sealed = bool(img.feature_compat & erofs_img.COMPAT_SB_CHKSUM)
    csum_end = img.bs if img.bs > erofs_img.SB_OFF else erofs_img.SB_OFF + img.bs
    print("%s: %d bytes, %d metadata bytes in %d ranges, sb checksum %s" % (
        a.image, len(pristine), total, len(ranges), "on" if sealed else "off"))

    mut = os.path.join(a.work, "mut.erofs")
    mnt = os.path.join(a.work, "mnt")
    os.makedirs(mnt, exist_ok=True)
    dev_args = ["--device", a.device] if a.device else []

    def check(path):
        try:
            r = subprocess.run([a.anole, "image", "check", path, "--max-errors", "5"] + dev_args,
                               capture_output=True, text=True, timeout=a.check_timeout,
                               errors="replace")
            return r.returncode, (r.stdout + r.stderr)
        except subprocess.TimeoutExpired as e:
            return "timeout", str(e.stdout or "") + str(e.stderr or "")

    def kernel(path):
        """None if the kernel mounts and reads everything, else a message."""
        mark = kmsg_mark()
        try:
            m.mount(path)
        except OSError as e:
            return "kernel refuses to mount: %s; dmesg: %s" % (e, " | ".join(dmesg_since(mark)))
        try:
            if a.sweep_superblock:
                # in this process: a python start per image was half the
                # sweep's time on a loaded machine (a superblock byte makes
                # no image that reads for long)
                errs, _counts = readall.read_tree(mnt)
                if errs:
                    return "kernel read errors:\n      %s\n      dmesg: %s" % (
                        "\n      ".join(str(e) for e in errs[:8]), " | ".join(dmesg_since(mark)))
                return None
            r = subprocess.run([sys.executable, os.path.join(HERE, "readall.py"), mnt],
                               capture_output=True, text=True, timeout=120, errors="replace")
            if r.returncode:
                return "kernel read errors:\n      %s\n      dmesg: %s" % (
                    "\n      ".join(r.stdout.strip().splitlines()[:8]), " | ".join(dmesg_since(mark)))
            return None
        except subprocess.TimeoutExpired:
            return "reading the mount took over 120 s"
        finally:
            m.umount()

    # The pristine image must be sound for both.
    m = Mounter(mnt, a.device)
    rc, out = check(a.image)
    if rc != 0:
        print(out)
        print("FAIL: anole image check fails on the pristine image (exit %s)" % rc)
        return 1
    m.choose(a.image)
    msg = kernel(a.image)
    if msg:
        print("FAIL: pristine image: " + msg)
        return 1

    failures = []
    stats = {"check_ok": 0, "check_bad": 0, "resealed": 0, "kernel_agrees": 0}
    t0 = time.monotonic()
    done = 0
    sweep = [(off, x) for off in range(*sb_range) if not (
        erofs_img.SB_OFF + 4 <= off < erofs_img.SB_OFF + 8) for x in (0xFF,)]
    if a.sweep_superblock:
        if not sealed:
            print("FAIL: --sweep-superblock needs an image with a superblock checksum")
            return 1
        a.iterations = len(sweep)
    try:
        for i in range(a.iterations):
            # the budget bounds random mutation only: the sweep is a finite
            # list that must finish (tests/run.sh's hang guard bounds it)
            if not a.sweep_superblock and time.monotonic() - t0 > a.budget:
                print("time budget of %.0fs reached after %d iterations" % (a.budget, i))
                break
            r = rng.random()
            if a.sweep_superblock:
                off, x = sweep[i]
            elif r < 0.1:
                off = rng.randrange(*sb_range)
            elif r < 0.7:
                # the head of a random structure: inode fields, xattr headers,
                # first dirents, chunk indexes (not deep inside big values)
                s, e, _lab = rng.choice(regions)
                off = rng.randrange(s, min(e, s + 64))
            else:
                k = rng.randrange(total)
                for s, e in ranges:
                    if k < e - s:
                        off = s + k
                        break
                    k -= e - s
            old = pristine[off]
            if a.sweep_superblock:
                new = old ^ x
            else:
                how = rng.choice(["xor", "xor", "zero", "ones", "bit"])
                new = {"xor": old ^ rng.randrange(1, 256), "zero": 0, "ones": 0xFF,
                       "bit": old ^ (1 << rng.randrange(8))}[how]
                if new == old:
                    new = old ^ 0x80
            data = bytearray(pristine)
            data[off] = new
            resealed = False
            if sealed and erofs_img.SB_OFF <= off < csum_end and not (
                    erofs_img.SB_OFF + 4 <= off < erofs_img.SB_OFF + 8) and (
                    a.sweep_superblock or rng.random() < 0.67):
                try:
                    tmp = erofs_img.Image(mut, bytes(data))
                    tmp.fix_checksum()
                    data = tmp.data
                    resealed = True
                    stats["resealed"] += 1
                except ValueError:
                    pass      # magic destroyed: nothing to reseal
            with open(mut, "wb") as f:
                f.write(data)
            done += 1
            rc, out = check(mut)
            what = "#%d: byte %d (%#x) %#04x -> %#04x%s in %s" % (
                i, off, off, old, new, " (checksum resealed)" if resealed else "",
                "; ".join(img.what_is(off)[:2]))
            problem = None
            if rc == "timeout":
                problem = "anole image check did not finish in %.0f s" % a.check_timeout
            elif rc == 99:
                problem = "sanitizer report from anole image check"
            elif rc < 0:
                problem = "anole image check killed by signal %d" % -rc
            elif rc not in (0, 1):
                problem = "anole image check exited %d (expected 0 or 1)" % rc
            elif rc == 1:
                stats["check_bad"] += 1
            else:
                stats["check_ok"] += 1
                msg = kernel(mut)
                if msg:
                    problem = "check says the image is sound but: " + msg
                else:
                    stats["kernel_agrees"] += 1
            if problem:
                keep = os.path.join(a.work, "fail-%d.erofs" % i)
                with open(keep, "wb") as f:
                    f.write(data)
                tail = "\n".join(out.strip().splitlines()[-12:])
                failures.append("%s\n    %s\n    image kept: %s\n    check output:\n%s" % (
                    what, problem, keep, "\n".join("      " + l for l in tail.splitlines())))
                print("FAIL " + failures[-1], flush=True)
            elif i % 25 == 0:
                print("ok %s: check exit %s" % (what, rc), flush=True)
    finally:
        m.close()

    print("%d corruptions in %.0fs: check rejected %d, accepted %d (kernel agreed on %d), "
          "%d resealed; %d failures" % (done, time.monotonic() - t0, stats["check_bad"],
                                        stats["check_ok"], stats["kernel_agrees"],
                                        stats["resealed"], len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
