// SPDX-License-Identifier: Apache-2.0
/*
 * anole os install / upgrade / rollback / status / verify / mark-good on an
 * A/B disk (a raw image file or a block device).
 *
 * Layout (MBR, 512-byte sectors):
 *   sector 0      syslinux's MBR code (mbr.bin) and the partition table
 *   sectors 1, 2  the boot state, two copies (include/anole/os_bootstate.h)
 *   p1 (1 MiB..)  boot, an EFI system partition: FAT with syslinux (BIOS)
 *                 and /EFI/BOOT/BOOTX64.EFI (syslinux for UEFI), /a and /b
 *                 (vmlinuz, initrd.img, manifest.json, manifest.sig),
 *                 anole-os.pub, syslinux.cfg (read under both firmwares)
 *   p2, p3        slots A and B: the raw EROFS root image
 *   p4            data: ext4 holding the /etc and /var overlays
 * The FAT is written with mtools and syslinux's installer through an offset
 * into the image: no loop device, no mount.
 */
#include "os_internal.h"
#include "anole/error.h"
#include "anole/endian.h"
#include "anole/fileio.h"
#include "anole/os.h"
#include "anole/os_bootstate.h"
#include "anole/progress.h"
#include "anole/ref.h"
#include "anole/sign.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1ull << 20)
#define SYSLINUX_MBR "/usr/lib/syslinux/mbr/mbr.bin"
#define MANIFEST_MAX OS_MANIFEST_MAX
#define SIG_MAX OS_SIG_MAX

/* UEFI: syslinux's EFI build is the boot partition's removable-media loader
 * (\EFI\BOOT\BOOTX64.EFI, what firmware without boot entries starts). Its
 * config search ends at the FAT's root, so it reads the same /syslinux.cfg
 * as the BIOS syslinux: one file says which slot's kernel starts, under
 * either firmware. */
#define SYSLINUX_EFI "/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi"
#define SYSLINUX_EFI_CORE "/usr/lib/syslinux/modules/efi64/ldlinux.e64"

struct os_disk {
	const char *path;
	int fd;
	uint64_t start[4], len[4];    /* bytes */
	struct anole_bootstate st;
};

/* ------------------------------------------------------------ the image */

struct os_image {
	struct archive *a;
	struct os_manifest m;
	const char *path;
	struct strbuf man, sig;     /* as read (verified): kept beside the slot */
	/* or an image reference: read chunk by chunk, the chunks of locals
	 * copied rather than fetched */
	bool is_remote;
	struct os_remote remote;
	const struct os_local *locals;
	unsigned nlocals;
};

static int read_member(struct os_image *img, const char *want, size_t max, struct strbuf *out)
{
	struct archive_entry *e;
	int r = archive_read_next_header(img->a, &e);

	if (r != ARCHIVE_OK)
		return anole_error_code(EBADMSG, "%s: not an anole OS image (%s)", img->path,
					r == ARCHIVE_EOF ? "empty" : archive_error_string(img->a));
	if (strcmp(archive_entry_pathname(e), want))
		return anole_error_code(EBADMSG, "%s: not an anole OS image: '%s' where %s belongs",
					img->path, archive_entry_pathname(e), want);
	if (archive_entry_size(e) < 0 || (uint64_t)archive_entry_size(e) > max)
		return anole_error_code(EBADMSG, "%s: %s is larger than %zu bytes", img->path, want, max);
	size_t n = (size_t)archive_entry_size(e);
	strbuf_grow(out, n + 1);
	if (archive_read_data(img->a, out->buf, n) != (la_ssize_t)n)
		return anole_error_code(EBADMSG, "%s: %s is cut short", img->path, want);
	strbuf_setlen(out, n);
	return 0;
}

/* Open an OS image and check its manifest's signature with key: nothing of
 * the image is used before that. */
static int image_open(struct os_image *img, const char *path, const struct anole_sign_key *key)
{
	int ret;

	memset(img, 0, sizeof(*img));
	img->path = path;
	strbuf_init(&img->man, 4096);
	strbuf_init(&img->sig, 128);
	img->a = archive_read_new();
	archive_read_support_format_tar(img->a);
	if (archive_read_open_filename(img->a, path, 1 << 20) != ARCHIVE_OK) {
		ret = anole_error_code(errno ? errno : EIO, "%s: %s", path, archive_error_string(img->a));
		archive_read_free(img->a);
		img->a = NULL;
		return ret;
	}
	ret = read_member(img, "manifest.json", MANIFEST_MAX, &img->man);
	if (ret == 0 && (ret = read_member(img, "manifest.sig", SIG_MAX, &img->sig)) < 0 &&
	    ret == -EBADMSG)
		anole_error_code(EBADMSG, "%s is unsigned: refused", path);
	if (ret == 0 && (ret = anole_verify(key, img->man.buf, img->man.len, img->sig.buf,
					    img->sig.len)) < 0)
		anole_error_code(EBADMSG, "%s: the manifest's signature does not verify with the "
				 "installed key: refused", path);
	if (ret == 0)
		ret = os_manifest_parse(img->man.buf, img->man.len, path, &img->m);
	if (ret < 0) {
		archive_read_free(img->a);
		img->a = NULL;
	}
	return ret;
}

/* A file as image_open; a reference (docker://, oci:) through the image
 * library, its manifest and signature fetched and verified first. */
static int image_open_ref(struct os_image *img, const char *text, const struct anole_sign_key *key,
			  const char *scratch, const struct anole_blobstore_opts *sopts)
{
	struct anole_ref ref;
	int ret = anole_ref_parse(text, ANOLE_REF_PATH, &ref);
	bool path = ret == 0 && ref.transport == ANOLE_REF_PATH;

	anole_ref_free(&ref);
	if (ret < 0)
		return ret;
	if (path)
		return image_open(img, text, key);
	memset(img, 0, sizeof(*img));
	img->path = text;
	strbuf_init(&img->man, 4096);
	strbuf_init(&img->sig, 128);
	if ((ret = os_remote_open(&img->remote, text, scratch, sopts, &img->man, &img->sig)) < 0)
		return ret;
	img->is_remote = true;
	if ((ret = anole_verify(key, img->man.buf, img->man.len, img->sig.buf, img->sig.len)) < 0)
		anole_error_code(EBADMSG, "%s: the manifest's signature does not verify with the "
				 "installed key: refused", text);
	if (ret == 0)
		ret = os_manifest_parse(img->man.buf, img->man.len, text, &img->m);
	return ret;
}

static void image_close(struct os_image *img)
{
	if (img->is_remote)
		os_remote_close(&img->remote);
	img->is_remote = false;
	if (img->a)
		archive_read_free(img->a);
	img->a = NULL;
	strbuf_release(&img->man);
	strbuf_release(&img->sig);
}

/* Stream the files into their sinks, checking each against the signed
 * manifest. A file that does not match is an error after the fact: callers
 * write only where a failure leaves nothing in force (an invalid slot, a
 * temp file). */
static int image_extract(struct os_image *img, const struct os_sink sinks[OS_NFILES],
			 struct anole_progress *prog)
{
	static uint8_t buf[1 << 20];
	int ret = 0;

	for (int i = 0; i < OS_NFILES && ret == 0; i++) {
		struct archive_entry *e;
		uint64_t done = 0;
		uint8_t dg[ANOLE_DIGEST_MAX];
		struct anole_digest_ctx *ctx;

		if (archive_read_next_header(img->a, &e) != ARCHIVE_OK ||
		    strcmp(archive_entry_pathname(e), os_file_names[i]))
			return anole_error_code(EBADMSG, "%s: %s missing (image truncated or not "
						"anole's)", img->path, os_file_names[i]);
		if ((uint64_t)archive_entry_size(e) != img->m.size[i])
			return anole_error_code(EBADMSG, "%s: %s is %lld bytes, the manifest says %llu: "
						"tampered", img->path, os_file_names[i],
						(long long)archive_entry_size(e),
						(unsigned long long)img->m.size[i]);
		if (img->m.size[i] > sinks[i].max)
			return anole_error_code(ENOSPC, "%s: %s (%llu bytes) does not fit its place "
						"(%llu bytes)", img->path, os_file_names[i],
						(unsigned long long)img->m.size[i],
						(unsigned long long)sinks[i].max);
		ctx = anole_digest_new(img->m.alg);
		while (done < img->m.size[i]) {
			la_ssize_t n = archive_read_data(img->a, buf, sizeof(buf));

			if (n <= 0) {
				ret = anole_error_code(EBADMSG, "%s: %s is cut short", img->path,
						       os_file_names[i]);
				break;
			}
			anole_digest_update(ctx, buf, (size_t)n);
			if ((ret = pwrite_full(sinks[i].fd, buf, (size_t)n, sinks[i].off + done)) < 0) {
				anole_error(-ret, "writing %s", os_file_names[i]);
				break;
			}
			done += (uint64_t)n;
			if (prog)
				anole_progress_add(prog, (uint64_t)n);
		}
		anole_digest_final(ctx, dg);
		anole_digest_free(ctx);
		if (ret == 0 && memcmp(dg, img->m.digest[i], anole_digest_size(img->m.alg)))
			ret = anole_error_code(EBADMSG, "%s: %s does not match its signed digest: "
					       "tampered, refused", img->path, os_file_names[i]);
	}
	return ret;
}

/* ------------------------------------------------------------ the disk */

static uint64_t round_mib(uint64_t n) { return (n + MIB - 1) / MIB * MIB; }

static int disk_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode))
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int disk_open(struct os_disk *d, const char *path, bool rw)
{
	uint8_t mbr[512];
	uint64_t size;
	int ret;

	memset(d, 0, sizeof(*d));
	d->path = path;
	d->fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (d->fd < 0)
		return anole_error(errno, "%s", path);
	if ((ret = disk_size(d->fd, &size)) < 0 || (ret = pread_full(d->fd, mbr, 512, 0)) < 0) {
		ret = anole_error_code(EINVAL, "%s: %s", path, ret == -ENODATA ?
				       "too short to be a disk (no partition table)" : strerror(-ret));
		goto fail;
	}
	if (mbr[510] != 0x55 || mbr[511] != 0xaa) {
		ret = anole_error_code(EINVAL, "%s: no MBR partition table: not an anole OS disk", path);
		goto fail;
	}
	if ((ret = anole_bootstate_read(d->fd, &d->st, NULL)) < 0) {
		ret = anole_error_code(EINVAL, "%s: no valid boot state in sectors 1-2: not an anole "
				       "OS disk, or its boot state is damaged", path);
		goto fail;
	}
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = mbr + 446 + 16 * i;
		uint32_t lba, n;

		memcpy(&lba, e + 8, 4);
		memcpy(&n, e + 12, 4);
		d->start[i] = (uint64_t)le32_to_cpu(lba) * 512;
		d->len[i] = (uint64_t)le32_to_cpu(n) * 512;
		if (!d->len[i] || d->start[i] < MIB) {
			ret = anole_error_code(EINVAL, "%s: partition %d is missing or misplaced: "
					       "not an anole OS disk", path, i + 1);
			goto fail;
		}
		if (d->start[i] + d->len[i] > size) {
			ret = anole_error_code(EINVAL, "%s: truncated: %llu bytes, but partition %d "
					       "ends at byte %llu", path, (unsigned long long)size,
					       i + 1, (unsigned long long)(d->start[i] + d->len[i]));
			goto fail;
		}
	}
	return 0;
fail:
	close(d->fd);
	d->fd = -1;
	return ret;
}

static void disk_close(struct os_disk *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

/* "PATH@@OFFSET", mtools' way to name a FAT inside an image */
static void fat_spec(const char *path, uint64_t off, char *out, size_t size)
{
	snprintf(out, size, "%s@@%llu", path, (unsigned long long)off);
}

static int fat_put(const char *spec, const char *src, const char *dst)
{
	char *argv[] = { "mcopy", "-o", "-i", (char *)spec, (char *)src, (char *)dst, NULL };

	return os_run(argv, NULL);
}

static int fat_get(const char *spec, const char *src, const char *dst)
{
	char *argv[] = { "mcopy", "-n", "-i", (char *)spec, (char *)src, (char *)dst, NULL };

	return os_run(argv, NULL);
}

static int write_text(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), ret;

	if (fd < 0)
		return anole_error(errno, "%s", path);
	ret = write_full(fd, text, len);
	close(fd);
	return ret < 0 ? anole_error(-ret, "%s", path) : 0;
}

static int put_bootcfg(const char *spec, const char *tmp, unsigned slot)
{
	char cfg[512], p[PATH_MAX];
	int n = anole_bootcfg(slot, cfg, sizeof(cfg)), ret;

	snprintf(p, sizeof(p), "%s/syslinux.cfg", tmp);
	if ((ret = write_text(p, cfg, (size_t)n)) < 0)
		return ret;
	return fat_put(spec, p, "::/syslinux.cfg");
}

static int state_write(struct os_disk *d)
{
	int ret = anole_bootstate_write(d->fd, &d->st);

	return ret < 0 ? anole_error(-ret, "%s: writing the boot state", d->path) : 0;
}

/* The installed trust anchor, from the boot partition. */
static int disk_key(struct os_disk *d, const char *tmp, struct anole_sign_key **key)
{
	char spec[PATH_MAX + 32], p[PATH_MAX];
	int ret;

	fat_spec(d->path, d->start[0], spec, sizeof(spec));
	snprintf(p, sizeof(p), "%s/anole-os.pub", tmp);
	if ((ret = fat_get(spec, "::/anole-os.pub", p)) < 0)
		return anole_error_code(EINVAL, "%s: no installed key (anole-os.pub on the boot "
					"partition)", d->path);
	return anole_sign_key_load(p, false, key);
}

/* Stage the image's files in `slot`: root into its partition, boot files
 * into the FAT's /a or /b. The caller has marked the slot invalid. */
static int write_slot(struct os_disk *d, struct os_image *img, unsigned slot, const char *tmp)
{
	char spec[PATH_MAX + 32], kpath[PATH_MAX], ipath[PATH_MAX], dst[64];
	struct os_sink sinks[OS_NFILES];
	int kfd, ifd, ret;
	char dir = slot ? 'b' : 'a';

	snprintf(kpath, sizeof(kpath), "%s/vmlinuz", tmp);
	snprintf(ipath, sizeof(ipath), "%s/initrd.img", tmp);
	kfd = open(kpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ifd = open(ipath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (kfd < 0 || ifd < 0) {
		ret = anole_error(errno, "%s", tmp);
		goto out;
	}
	sinks[OS_F_KERNEL] = (struct os_sink){ kfd, 0, d->len[0] };
	sinks[OS_F_INITRD] = (struct os_sink){ ifd, 0, d->len[0] };
	sinks[OS_F_ROOT] = (struct os_sink){ d->fd, d->start[1 + slot], d->len[1 + slot] };
	uint64_t total = img->m.size[0] + img->m.size[1] + img->m.size[2];
	if (img->is_remote) {
		ret = os_remote_extract(&img->remote, &img->m, sinks, img->locals, img->nlocals,
					img->path);
	} else {
		struct anole_progress *prog = anole_progress_start("writing slot", total, "B");

		ret = image_extract(img, sinks, prog);
		anole_progress_done(prog);
	}
	if (ret == 0 && fsync(d->fd) < 0 && errno != EINVAL)
		ret = anole_error(errno, "%s: flushing slot %c", d->path, anole_slot_letter(slot));
	if (ret < 0)
		goto out;
	fat_spec(d->path, d->start[0], spec, sizeof(spec));
	snprintf(dst, sizeof(dst), "::/%c/vmlinuz", dir);
	if ((ret = fat_put(spec, kpath, dst)) < 0)
		goto out;
	snprintf(dst, sizeof(dst), "::/%c/initrd.img", dir);
	ret = fat_put(spec, ipath, dst);
out:
	if (kfd >= 0)
		close(kfd);
	if (ifd >= 0)
		close(ifd);
	return ret;
}

/* The verified manifest and signature, kept beside the slot for verify
 * (from memory: the image may be a pipe, read once). */
static int put_manifest(const char *spec, const struct os_image *img, const char *tmp,
			unsigned slot)
{
	const struct strbuf *data[2] = { &img->man, &img->sig };
	static const char *const names[2] = { "manifest.json", "manifest.sig" };
	char p[PATH_MAX], dst[64];
	int ret = 0;

	for (int i = 0; i < 2 && ret == 0; i++) {
		snprintf(p, sizeof(p), "%s/%s", tmp, names[i]);
		snprintf(dst, sizeof(dst), "::/%c/%s", slot ? 'b' : 'a', names[i]);
		if ((ret = write_text(p, data[i]->buf, data[i]->len)) == 0)
			ret = fat_put(spec, p, dst);
	}
	return ret;
}

int anole_os_install(const struct anole_os_install_opts *o)
{
	struct anole_sign_key *key = NULL;
	struct anole_output out = { .fd = -1 };
	struct os_image img = { 0 };
	struct os_disk d = { .fd = -1 };
	struct strbuf pem;
	char *tmp = NULL, spec[PATH_MAX + 32], p[PATH_MAX];
	uint8_t mbr[512] = { 0 };
	int ret;

	strbuf_init(&pem, 512);
	if ((ret = anole_sign_key_load(o->pubkey, false, &key)) < 0)
		return ret;
	if ((ret = image_open(&img, o->image, key)) < 0)
		goto out;

	/* sizes: the boot partition holds two slots' boot files with room to
	 * grow; slots twice the root image, so that a bigger upgrade fits */
	uint64_t boot_files = img.m.size[OS_F_KERNEL] + img.m.size[OS_F_INITRD];
	uint64_t boot = round_mib(boot_files * 4 + 16 * MIB);
	uint64_t slot = o->slot_size ? round_mib(o->slot_size) : round_mib(img.m.size[OS_F_ROOT] * 2);
	if (slot < 256 * MIB && !o->slot_size)
		slot = 256 * MIB;
	uint64_t data = o->data_size ? round_mib(o->data_size) : 256 * MIB;
	uint64_t fixed = MIB + boot + 2 * slot;
	if (o->size) {
		if (o->size < fixed + 64 * MIB) {
			ret = anole_error_code(EINVAL, "--size %llu is too small: boot %llu + slots "
					       "2 x %llu + 64 MiB of data (and 1 MiB) are needed",
					       (unsigned long long)o->size, (unsigned long long)boot,
					       (unsigned long long)slot);
			goto out;
		}
		data = (o->size - fixed) / MIB * MIB;
	}
	if (slot < img.m.size[OS_F_ROOT]) {
		ret = anole_error_code(ENOSPC, "--slot-size %llu is smaller than the root image (%llu bytes)",
				       (unsigned long long)slot, (unsigned long long)img.m.size[OS_F_ROOT]);
		goto out;
	}
	d.start[0] = MIB, d.len[0] = boot;
	d.start[1] = d.start[0] + boot, d.len[1] = slot;
	d.start[2] = d.start[1] + slot, d.len[2] = slot;
	d.start[3] = d.start[2] + slot, d.len[3] = data;
	uint64_t total = d.start[3] + data;
	if (total / 512 > UINT32_MAX) {
		ret = anole_error_code(EFBIG, "a disk of %llu bytes is beyond MBR's 2 TiB",
				       (unsigned long long)total);
		goto out;
	}

	static const char *const efi_files[] = { SYSLINUX_EFI, SYSLINUX_EFI_CORE };
	for (int i = 0; i < 2; i++)
		if (access(efi_files[i], R_OK) < 0) {
			ret = anole_error(errno, "%s (Debian: syslinux-efi)", efi_files[i]);
			goto out;
		}
	if ((ret = anole_temp_dir("anole-os", &tmp)) < 0 ||
	    (ret = anole_output_open(&out, o->disk)) < 0)
		goto out;
	d.fd = out.fd;
	d.path = out.tmp_path;
	if (ftruncate(out.fd, (off_t)total) < 0) {
		ret = anole_error(errno, "%s", o->disk);
		goto out_abort;
	}
	int mfd = open(SYSLINUX_MBR, O_RDONLY | O_CLOEXEC);
	if (mfd < 0 || read(mfd, mbr, 440) != 440) {
		ret = anole_error(errno ? errno : EIO, "%s (Debian: syslinux-common)", SYSLINUX_MBR);
		if (mfd >= 0)
			close(mfd);
		goto out_abort;
	}
	close(mfd);
	for (int i = 0; i < 4; i++) {
		uint8_t *e = mbr + 446 + 16 * i;

		e[0] = i == 0 ? 0x80 : 0;           /* the boot partition is active */
		memcpy(e + 1, "\xfe\xff\xff", 3);   /* CHS: beyond, LBA is what counts */
		e[4] = i == 0 ? 0xef : 0x83;        /* EFI system partition (FAT); Linux */
		memcpy(e + 5, "\xfe\xff\xff", 3);
		put_le32(e + 8, (uint32_t)(d.start[i] / 512));
		put_le32(e + 12, (uint32_t)(d.len[i] / 512));
	}
	mbr[510] = 0x55, mbr[511] = 0xaa;
	if ((ret = pwrite_full(out.fd, mbr, 512, 0)) < 0) {
		anole_error(-ret, "%s", o->disk);
		goto out_abort;
	}
	d.st = (struct anole_bootstate){ .next = 0, .good = ANOLE_BST_NO_SLOT };
	if ((ret = state_write(&d)) < 0)
		goto out_abort;

	/* the boot partition: FAT, syslinux, the trust anchor */
	char off_s[32], blocks_s[32], boff_s[32];
	snprintf(off_s, sizeof(off_s), "%llu", (unsigned long long)(d.start[0] / 512));
	snprintf(blocks_s, sizeof(blocks_s), "%llu", (unsigned long long)(d.len[0] / 1024));
	snprintf(boff_s, sizeof(boff_s), "%llu", (unsigned long long)d.start[0]);
	char *mkfat[] = { "mkfs.fat", "-F", "16", "-n", "ANOLEBOOT", "--offset", off_s,
			  out.tmp_path, blocks_s, NULL };
	char *sysl[] = { "syslinux", "--offset", boff_s, "--install", out.tmp_path, NULL };
	if ((ret = os_run(mkfat, NULL)) < 0 || (ret = os_run(sysl, NULL)) < 0)
		goto out_abort;
	fat_spec(out.tmp_path, d.start[0], spec, sizeof(spec));
	char *mmd[] = { "mmd", "-i", spec, "::/a", "::/b", "::/EFI", "::/EFI/BOOT", NULL };
	if ((ret = os_run(mmd, NULL)) < 0 ||
	    (ret = fat_put(spec, SYSLINUX_EFI, "::/EFI/BOOT/BOOTX64.EFI")) < 0 ||
	    (ret = fat_put(spec, SYSLINUX_EFI_CORE, "::/EFI/BOOT/LDLINUX.E64")) < 0)
		goto out_abort;
	snprintf(p, sizeof(p), "%s/anole-os.pub", tmp);
	if ((ret = anole_sign_key_public_pem(key, &pem)) < 0 ||
	    (ret = write_text(p, pem.buf, pem.len)) < 0 ||
	    (ret = fat_put(spec, p, "::/anole-os.pub")) < 0)
		goto out_abort;

	/* the data partition */
	char doff_s[48], dsize_s[32];
	snprintf(doff_s, sizeof(doff_s), "offset=%llu", (unsigned long long)d.start[3]);
	snprintf(dsize_s, sizeof(dsize_s), "%lluk", (unsigned long long)(d.len[3] / 1024));
	char *mkext[] = { "mkfs.ext4", "-q", "-F", "-L", "anole-data", "-E", doff_s,
			  out.tmp_path, dsize_s, NULL };
	if ((ret = os_run(mkext, NULL)) < 0)
		goto out_abort;

	/* slot A */
	if ((ret = write_slot(&d, &img, 0, tmp)) < 0 ||
	    (ret = put_manifest(spec, &img, tmp, 0)) < 0 ||
	    (ret = put_bootcfg(spec, tmp, 0)) < 0)
		goto out_abort;
	d.st.valid = 1;
	snprintf(d.st.version[0], sizeof(d.st.version[0]), "%s", img.m.version);
	if ((ret = state_write(&d)) < 0)
		goto out_abort;
	ret = anole_output_commit(&out);
	goto out;
out_abort:
	anole_output_abort(&out);
out:
	image_close(&img);
	if (tmp) {
		anole_remove_tree(tmp);
		free(tmp);
	}
	anole_sign_key_free(key);
	strbuf_release(&pem);
	return ret;
}

/*
 * What the machine already has of an image, for an upgrade from a
 * reference: the root partition of slot cur (as long as its manifest says,
 * else all of it), its kernel and initramfs from the boot partition. A
 * piece that cannot be had is left out: it is only a source of copies.
 */
static unsigned upgrade_locals(struct os_disk *d, unsigned cur, const char *tmp,
			       struct os_local locals[3], int fds[2])
{
	static const char *const names[3] = { "manifest.json", "vmlinuz", "initrd.img" };
	char spec[PATH_MAX + 32], src[64], p[PATH_MAX];
	uint64_t root = d->len[1 + cur];
	unsigned n = 0;

	if (!(d->st.valid & (1u << cur)))
		return 0;
	fat_spec(d->path, d->start[0], spec, sizeof(spec));
	for (int i = 0; i < 3; i++) {
		struct stat st;

		snprintf(src, sizeof(src), "::/%c/%s", cur ? 'b' : 'a', names[i]);
		snprintf(p, sizeof(p), "%s/installed-%s", tmp, names[i]);
		if (fat_get(spec, src, p) < 0)
			continue;
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (i == 0) {
			struct strbuf man = STRBUF_INIT;
			struct os_manifest m;

			if (st.st_size > 0 && st.st_size <= MANIFEST_MAX) {
				strbuf_grow(&man, (size_t)st.st_size + 1);
				if (pread_full(fd, man.buf, (size_t)st.st_size, 0) == 0) {
					strbuf_setlen(&man, (size_t)st.st_size);
					if (os_manifest_parse(man.buf, man.len, p, &m) == 0 &&
					    m.size[OS_F_ROOT] <= root)
						root = m.size[OS_F_ROOT];
				}
			}
			strbuf_release(&man);
			close(fd);
			continue;
		}
		fds[i - 1] = fd;
		locals[n++] = (struct os_local){ fd, 0, (uint64_t)st.st_size };
	}
	locals[n++] = (struct os_local){ d->fd, d->start[1 + cur], root };
	return n;
}

int anole_os_upgrade(const char *image, const char *path, unsigned tries, struct strbuf *report)
{
	struct anole_os_upgrade_opts o = { .image = image, .disk = path, .tries = tries };

	return anole_os_upgrade_ref(&o, report);
}

int anole_os_upgrade_ref(const struct anole_os_upgrade_opts *o, struct strbuf *report)
{
	const char *image = o->image, *path = o->disk;
	unsigned tries = o->tries;
	struct anole_sign_key *key = NULL;
	struct os_image img = { 0 };
	struct os_local locals[3];
	int local_fds[2] = { -1, -1 };
	struct os_disk d;
	char *tmp = NULL, spec[PATH_MAX + 32];
	int ret;

	if ((ret = disk_open(&d, path, true)) < 0)
		return ret;
	if ((ret = anole_temp_dir("anole-os", &tmp)) < 0 || (ret = disk_key(&d, tmp, &key)) < 0 ||
	    (ret = image_open_ref(&img, image, key, tmp, o->store)) < 0)
		goto out;
	/* the slot in use is the good one (or, before any mark-good, next) */
	bool good_ok = d.st.good <= 1 && (d.st.valid & (1u << d.st.good));
	unsigned cur = good_ok ? d.st.good : d.st.next, target = !cur;
	/* on the running system: never under the mounted root. The running slot
	 * is the other one only while it is on trial, and then the good slot is
	 * the one fallback left */
	if ((int)target == anole_os_running_slot(path)) {
		ret = anole_error_code(EBUSY, "%s: slot %c is running on trial (not marked good) and "
				       "slot %c is the good one: mark the running slot good first "
				       "(anole os mark-good), or boot slot %c", path,
				       anole_slot_letter(target), anole_slot_letter(cur),
				       anole_slot_letter(cur));
		goto out;
	}
	if (img.m.size[OS_F_ROOT] > d.len[1 + target]) {
		ret = anole_error_code(ENOSPC, "%s: the root image (%llu bytes) does not fit slot %c "
				       "(%llu bytes)", image, (unsigned long long)img.m.size[OS_F_ROOT],
				       anole_slot_letter(target), (unsigned long long)d.len[1 + target]);
		goto out;
	}
	if (img.is_remote) {
		img.nlocals = upgrade_locals(&d, cur, tmp, locals, local_fds);
		img.locals = locals;
	}
	/* invalid before its first byte changes: a torn slot never boots */
	d.st.valid &= (uint8_t)~(1u << target);
	if (d.st.next == target) {
		d.st.next = (uint8_t)cur;
		d.st.tries = 0;
	}
	if ((ret = state_write(&d)) < 0)
		goto out;
	fat_spec(path, d.start[0], spec, sizeof(spec));
	if ((ret = write_slot(&d, &img, target, tmp)) < 0 ||
	    (ret = put_manifest(spec, &img, tmp, target)) < 0)
		goto out;
	d.st.valid |= (uint8_t)(1u << target);
	snprintf(d.st.version[target], sizeof(d.st.version[0]), "%s", img.m.version);
	d.st.next = (uint8_t)target;
	d.st.tries = (uint8_t)(tries ? tries : ANOLE_OS_DEFAULT_TRIES);
	if ((ret = state_write(&d)) < 0)
		goto out;
	/* after the state: a crash here leaves the old kernel starting, and its
	 * initramfs switches the bootloader to the new slot */
	if ((ret = put_bootcfg(spec, tmp, target)) < 0)
		goto out;
	uint64_t image_bytes = img.m.size[0] + img.m.size[1] + img.m.size[2];
	const struct anole_fetch_stats *fs = &img.remote.stats;
	if (report && o->json) {
		strbuf_addstr(report, "{\"disk\":");
		strbuf_add_json_string(report, path, strlen(path));
		strbuf_addstr(report, ",\"source\":");
		strbuf_add_json_string(report, image, strlen(image));
		strbuf_addf(report, ",\"slot\":\"%c\",\"version\":\"%s\",\"tries\":%u,"
			    "\"fallback\":\"%c\",\"image_bytes\":%llu", anole_slot_letter(target),
			    img.m.version, d.st.tries, anole_slot_letter(cur),
			    (unsigned long long)image_bytes);
		if (img.is_remote)
			strbuf_addf(report, ",\"bytes_fetched\":%llu,\"metadata_bytes\":%llu,"
				    "\"requests\":%llu,\"chunks_fetched\":%llu,\"chunks_local\":%llu,"
				    "\"bytes_local\":%llu", (unsigned long long)fs->bytes_fetched,
				    (unsigned long long)img.remote.metadata_bytes,
				    (unsigned long long)fs->requests,
				    (unsigned long long)fs->chunks_fetched,
				    (unsigned long long)fs->chunks_local,
				    (unsigned long long)fs->bytes_local);
		else   /* a file or a pipe is read whole */
			strbuf_addf(report, ",\"bytes_fetched\":%llu", (unsigned long long)image_bytes);
		strbuf_addstr(report, "}\n");
	} else if (report) {
		strbuf_addf(report, "slot %c: version %s, next boot with %u tries; slot %c (%s) "
			    "stays as the fallback\n", anole_slot_letter(target), img.m.version,
			    d.st.tries, anole_slot_letter(cur), d.st.version[cur]);
		if (img.is_remote)
			strbuf_addf(report, "fetched %llu of %llu bytes (%llu metadata, %llu chunks in "
				    "%llu requests); %llu chunks (%llu bytes) copied from slot %c\n",
				    (unsigned long long)fs->bytes_fetched,
				    (unsigned long long)image_bytes,
				    (unsigned long long)img.remote.metadata_bytes,
				    (unsigned long long)fs->chunks_fetched,
				    (unsigned long long)fs->requests,
				    (unsigned long long)fs->chunks_local,
				    (unsigned long long)fs->bytes_local, anole_slot_letter(cur));
	}
out:
	for (int i = 0; i < 2; i++)
		if (local_fds[i] >= 0)
			close(local_fds[i]);
	image_close(&img);
	anole_sign_key_free(key);
	if (tmp) {
		anole_remove_tree(tmp);
		free(tmp);
	}
	disk_close(&d);
	return ret;
}

int anole_os_rollback(const char *path, struct strbuf *report)
{
	struct os_disk d;
	char *tmp = NULL, spec[PATH_MAX + 32];
	int ret;

	if ((ret = disk_open(&d, path, true)) < 0)
		return ret;
	unsigned target = !d.st.next;
	if (!(d.st.valid & (1u << target))) {
		ret = anole_error_code(ENOENT, "%s: slot %c holds no valid image: nothing to roll "
				       "back to", path, anole_slot_letter(target));
		goto out;
	}
	d.st.next = (uint8_t)target;
	d.st.tries = d.st.good == target ? 0 : ANOLE_OS_DEFAULT_TRIES;
	if ((ret = state_write(&d)) < 0 || (ret = anole_temp_dir("anole-os", &tmp)) < 0)
		goto out;
	fat_spec(path, d.start[0], spec, sizeof(spec));
	if ((ret = put_bootcfg(spec, tmp, target)) < 0)
		goto out;
	if (report)
		strbuf_addf(report, "next boot: slot %c (version %s)\n", anole_slot_letter(target),
			    d.st.version[target]);
out:
	if (tmp) {
		anole_remove_tree(tmp);
		free(tmp);
	}
	disk_close(&d);
	return ret;
}

int anole_os_status(const char *path, bool json, struct strbuf *out)
{
	struct os_disk d;
	int ret;

	if ((ret = disk_open(&d, path, false)) < 0)
		return ret;
	const struct anole_bootstate *s = &d.st;
	int running = anole_os_running_slot(path);
	if (json) {
		strbuf_addstr(out, "{\"disk\":");
		strbuf_add_json_string(out, path, strlen(path));
		strbuf_addf(out, ",\"next\":\"%c\",\"tries\":%u,\"good\":", anole_slot_letter(s->next),
			    s->tries);
		if (s->good <= 1)
			strbuf_addf(out, "\"%c\"", anole_slot_letter(s->good));
		else
			strbuf_addstr(out, "null");
		strbuf_addstr(out, ",\"running\":");
		if (running >= 0)
			strbuf_addf(out, "\"%c\"", anole_slot_letter((unsigned)running));
		else
			strbuf_addstr(out, "null");
		strbuf_addf(out, ",\"seq\":%u,\"slots\":[", s->seq);
		for (unsigned i = 0; i < 2; i++) {
			strbuf_addf(out, "%s{\"slot\":\"%c\",\"valid\":%s,\"version\":", i ? "," : "",
				    anole_slot_letter(i), s->valid & (1u << i) ? "true" : "false");
			strbuf_add_json_string(out, s->version[i], strlen(s->version[i]));
			strbuf_addf(out, ",\"partition_bytes\":%llu}", (unsigned long long)d.len[1 + i]);
		}
		strbuf_addstr(out, "]}\n");
	} else {
		strbuf_addf(out, "next boot: slot %c%s\n", anole_slot_letter(s->next),
			    s->next == s->good ? " (good)" : "");
		if (s->next != s->good && s->good <= 1)
			strbuf_addf(out, "tries left: %u, then back to slot %c\n", s->tries,
				    anole_slot_letter(s->good));
		for (unsigned i = 0; i < 2; i++)
			strbuf_addf(out, "slot %c: %s%s%s%s\n", anole_slot_letter(i),
				    s->valid & (1u << i) ? s->version[i] : "(empty or invalid)",
				    s->good == i ? ", good" : "", s->next == i ? ", next" : "",
				    running == (int)i ? ", running" : "");
	}
	disk_close(&d);
	return 0;
}

static int digest_range(int fd, uint64_t off, uint64_t len, enum anole_digest_alg alg, uint8_t *dg)
{
	static uint8_t buf[1 << 20];
	struct anole_digest_ctx *ctx = anole_digest_new(alg);
	int ret = 0;

	while (len && ret == 0) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);

		if ((ret = pread_full(fd, buf, n, off)) == 0)
			anole_digest_update(ctx, buf, n);
		off += n;
		len -= n;
	}
	anole_digest_final(ctx, dg);
	anole_digest_free(ctx);
	return ret;
}

int anole_os_verify(const char *path, int slot, bool json, struct strbuf *out)
{
	struct anole_sign_key *key = NULL;
	struct os_disk d;
	struct os_manifest m;
	struct strbuf man, sig;
	char *tmp = NULL, spec[PATH_MAX + 32], p[PATH_MAX], src[64];
	int ret, bad = 0;

	strbuf_init(&man, 4096);
	strbuf_init(&sig, 128);
	if ((ret = disk_open(&d, path, false)) < 0)
		return ret;
	int running = slot < 0 ? anole_os_running_slot(path) : -1;
	unsigned s = slot >= 0 ? (unsigned)slot : running >= 0 ? (unsigned)running : d.st.next;
	char dir = s ? 'b' : 'a';
	if (!(d.st.valid & (1u << s))) {
		ret = anole_error_code(ENOENT, "%s: slot %c holds no valid image", path,
				       anole_slot_letter(s));
		goto out;
	}
	if ((ret = anole_temp_dir("anole-os", &tmp)) < 0 || (ret = disk_key(&d, tmp, &key)) < 0)
		goto out;
	fat_spec(path, d.start[0], spec, sizeof(spec));
	static const char *const fetch[] = { "manifest.json", "manifest.sig", "vmlinuz", "initrd.img" };
	for (int i = 0; i < 4 && ret == 0; i++) {
		snprintf(src, sizeof(src), "::/%c/%s", dir, fetch[i]);
		snprintf(p, sizeof(p), "%s/%s", tmp, fetch[i]);
		ret = fat_get(spec, src, p);
	}
	if (ret < 0)
		goto out;
	int fd;
	struct stat st;
	for (int i = 0; i < 2; i++) {
		struct strbuf *b = i ? &sig : &man;

		snprintf(p, sizeof(p), "%s/%s", tmp, fetch[i]);
		if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0 ||
		    st.st_size > (i ? SIG_MAX : MANIFEST_MAX)) {
			ret = anole_error_code(EBADMSG, "%s: slot %c's %s is missing or too large",
					       path, anole_slot_letter(s), fetch[i]);
			if (fd >= 0)
				close(fd);
			goto out;
		}
		strbuf_grow(b, (size_t)st.st_size + 1);
		ret = pread_full(fd, b->buf, (size_t)st.st_size, 0);
		strbuf_setlen(b, (size_t)st.st_size);
		close(fd);
		if (ret < 0)
			goto out;
	}
	if ((ret = anole_verify(key, man.buf, man.len, sig.buf, sig.len)) < 0) {
		anole_error_code(EBADMSG, "%s: slot %c's manifest does not verify with the "
				 "installed key", path, anole_slot_letter(s));
		goto out;
	}
	if ((ret = os_manifest_parse(man.buf, man.len, path, &m)) < 0)
		goto out;
	if (json)
		strbuf_addf(out, "{\"slot\":\"%c\",\"version\":\"%s\",\"files\":{", anole_slot_letter(s),
			    m.version);
	else
		strbuf_addf(out, "slot %c: version %s, signature ok\n", anole_slot_letter(s), m.version);
	for (int i = 0; i < OS_NFILES; i++) {
		uint8_t dg[ANOLE_DIGEST_MAX];

		if (i == OS_F_ROOT) {
			ret = m.size[i] > d.len[1 + s] ? -ENOSPC :
				digest_range(d.fd, d.start[1 + s], m.size[i], m.alg, dg);
		} else {
			snprintf(p, sizeof(p), "%s/%s", tmp, os_file_names[i]);
			if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
				ret = -errno;
			} else {
				ret = (uint64_t)st.st_size != m.size[i] ? -EBADMSG :
					digest_range(fd, 0, m.size[i], m.alg, dg);
			}
			if (fd >= 0)
				close(fd);
		}
		bool ok = ret == 0 && !memcmp(dg, m.digest[i], anole_digest_size(m.alg));
		bad += !ok;
		if (json)
			strbuf_addf(out, "%s\"%s\":%s", i ? "," : "", os_file_names[i], ok ? "true" : "false");
		else
			strbuf_addf(out, "  %-10s %s\n", os_file_names[i], ok ? "ok" : "DOES NOT MATCH");
	}
	if (json)
		strbuf_addf(out, "},\"ok\":%s}\n", bad ? "false" : "true");
	ret = bad ? anole_error_code(EBADMSG, "%s: slot %c: %d file(s) differ from the signed "
				     "manifest", path, anole_slot_letter(s), bad) : 0;
out:
	anole_sign_key_free(key);
	if (tmp) {
		anole_remove_tree(tmp);
		free(tmp);
	}
	strbuf_release(&man);
	strbuf_release(&sig);
	disk_close(&d);
	return ret;
}

int anole_os_mark_good(const char *path, int slot, struct strbuf *report)
{
	struct os_disk d;
	int ret;

	if (slot < 0 && (slot = anole_os_running_slot(path)) < 0)
		return anole_error_code(EINVAL, "%s is not the disk this system booted from: name "
					"the slot to mark good (--slot A|B)", path);
	if ((ret = disk_open(&d, path, true)) < 0)
		return ret;
	unsigned s = (unsigned)slot;
	int changed = anole_bootstate_mark_good(&d.st, s);
	if (changed < 0)
		ret = anole_error_code(EINVAL, "%s: slot %c holds no valid image", path,
				       anole_slot_letter(s));
	else if (changed)
		ret = state_write(&d);
	if (ret == 0 && report)
		strbuf_addf(report, "slot %c (version %s) %s good\n", anole_slot_letter(s),
			    d.st.version[s], changed ? "marked" : "was already");
	disk_close(&d);
	return ret;
}

/* The first line of a small file under /run/anole-os, or false. */
static bool run_file(const char *name, char *out, size_t size)
{
	char p[64];
	FILE *f;
	bool ok;

	snprintf(p, sizeof(p), "/run/anole-os/%s", name);
	if (!(f = fopen(p, "r")))
		return false;
	ok = fgets(out, (int)size, f) != NULL;
	fclose(f);
	out[ok ? strcspn(out, "\n") : 0] = 0;
	return out[0] != 0;
}

const char *anole_os_booted_disk(void)
{
	static char disk[PATH_MAX];

	return run_file("disk", disk, sizeof(disk)) ? disk : NULL;
}

int anole_os_running_slot(const char *path)
{
	const char *booted = anole_os_booted_disk();
	char slot[8];
	struct stat a, b;

	if (!booted || !path || stat(path, &a) < 0 || stat(booted, &b) < 0)
		return -1;
	/* the same disk by identity, not by name (/dev/sda, a symlink to it) */
	bool same = S_ISBLK(a.st_mode) ? S_ISBLK(b.st_mode) && a.st_rdev == b.st_rdev :
		a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	if (!same || !run_file("slot", slot, sizeof(slot)))
		return -1;
	return anole_slot_parse(slot);
}
