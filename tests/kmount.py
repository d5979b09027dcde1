#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Kernel mounts of EROFS images without util-linux.

    kmount.py mount IMAGE MNT [--device BLOB]...   file-backed mount(2)
    kmount.py umount MNT

A file-backed EROFS mount (CONFIG_EROFS_FS_BACKED_BY_FILE, Linux 6.12+) is a
plain mount(2) with the image path as the source; extra devices may then be
regular files too (-o device=/abs/blob).  util-linux's mount would attach a
loop device for the image, and then every device= must be a block device.
"""
import ctypes
import os
import sys

MS_RDONLY = 1
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(image, mnt, devices=(), extra_opts=""):
    opts = ",".join(["device=" + os.path.abspath(d) for d in devices] +
                    ([extra_opts] if extra_opts else []))
    r = _libc.mount(os.fsencode(os.path.abspath(image)), os.fsencode(mnt), b"erofs",
                    MS_RDONLY, opts.encode() if opts else None)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount(%s, %s, erofs, ro, %r): %s" % (image, mnt, opts, os.strerror(e)))


def umount(mnt, lazy=False):
    if _libc.umount2(os.fsencode(mnt), MNT_DETACH if lazy else 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "umount(%s): %s" % (mnt, os.strerror(e)))


def main(argv):
    if len(argv) >= 3 and argv[0] == "mount":
        devs, rest = [], argv[3:]
        while rest:
            if rest[0] == "--device" and len(rest) > 1:
                devs.append(rest[1])
                rest = rest[2:]
            else:
                sys.exit("kmount.py: bad argument %r" % rest[0])
        try:
            mount(argv[1], argv[2], devs)
        except OSError as e:
            print("kmount.py: %s" % e, file=sys.stderr)
            return 1
        return 0
    if len(argv) == 2 and argv[0] == "umount":
        try:
            umount(argv[1])
        except OSError as e:
            print("kmount.py: %s" % e, file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
