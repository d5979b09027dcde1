// SPDX-License-Identifier: Apache-2.0
/* anole os: the command-line side of os/ (options and printing only). */
#include "anole.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/os.h"
#include "anole/os_bootstate.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "store_opts.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_ROOTFS = 256, OPT_VERSION, OPT_KEY, OPT_COMPRESS, OPT_HELPER, OPT_MODULES,
       OPT_DISK, OPT_SIZE, OPT_SLOT_SIZE, OPT_DATA_SIZE, OPT_TRIES, OPT_JSON, OPT_SLOT,
       OPT_FROM, OPT_POLICY, OPT_CHUNK_SIZE };

static int usage_error(const char *verb, const char *msg)
{
	fprintf(stderr, "anole os %s: %s (see anole os %s --help)\n", verb, msg, verb);
	return 2;
}

static int parse_size_opt(const char *verb, const char *opt, const char *s, uint64_t *out)
{
	unsigned long long v;

	if (anole_parse_size(s, &v) || !v) {
		fprintf(stderr, "anole os %s: %s takes a size (e.g. 2G, 512M)\n", verb, opt);
		return -1;
	}
	*out = v;
	return 0;
}

/* ---------------------------------------------------------------- build */

static const char build_help[] =
"usage: anole os build --rootfs DIR --version V --key KEY.pem -o OS_IMAGE\n"
"       anole os build --from REF --version V --key KEY.pem -o OS_IMAGE [--policy FILE]\n"
"\n"
"Make a signed, bootable OS image of a root tree: the kernel (/boot/vmlinuz-KVER),\n"
"an initramfs generated here (busybox from the rootfs, the modules needed to\n"
"reach the root from /lib/modules/KVER), and the rootfs as an EROFS image.\n"
"The rootfs needs /sbin/init, a static /bin/busybox, and the directories\n"
"/etc /var /proc /sys /dev /run. Its init runs `/run/anole-os/anole-os-boot\n"
"mark-good` once healthy (docs/anole-os.md).\n"
"\n"
"options:\n"
"      --rootfs DIR       the root tree\n"
"      --from REF         or the root tree of an image: oci:DIR[:TAG],\n"
"                         docker://HOST/REPO[:TAG][@DIGEST], oci-archive:FILE,\n"
"                         docker-archive:FILE; an OCI image of layers or an\n"
"                         anole image (docs/oci.md, \"Image references\")\n"
"      --policy FILE      with --from: trust policy, containers-policy.json(5)\n"
"                         (default: /etc/containers/policy.json if it exists)\n"
"      --version V        the image's version (1-31 of [A-Za-z0-9._+-])\n"
"      --key KEY.pem      private key: ECDSA P-256, SM2 (digests are then SM3) or Ed25519\n"
"  -o, --output FILE      the OS image\n"
"      --compress ALG     EROFS data compression (lz4, lz4hc[,L], none; default lz4hc)\n"
"      --modules LIST     more modules for the initramfs (comma-separated)\n"
"      --helper PATH      the static anole-os-boot (default: beside anole)\n"
"  -q, --quiet            no progress or summary\n"
"  -h, --help             this help\n"
"registry options (with --from):\n"
STORE_HELP;

static int os_build(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rootfs", required_argument, NULL, OPT_ROOTFS },
		{ "version", required_argument, NULL, OPT_VERSION },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "output", required_argument, NULL, 'o' },
		{ "compress", required_argument, NULL, OPT_COMPRESS },
		{ "modules", required_argument, NULL, OPT_MODULES },
		{ "helper", required_argument, NULL, OPT_HELPER },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		STORE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct anole_os_build_opts o = { 0 };
	struct store_cli store = { 0 };
	bool quiet = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_ROOTFS: o.rootfs = optarg; break;
		case OPT_VERSION: o.version = optarg; break;
		case OPT_KEY: o.key = optarg; break;
		case 'o': o.output = optarg; break;
		case OPT_COMPRESS: o.compress = optarg; break;
		case OPT_MODULES: o.extra_modules = optarg; break;
		case OPT_HELPER: o.helper = optarg; break;
		case OPT_FROM: o.from = optarg; break;
		case OPT_POLICY: o.policy = optarg; break;
		case 'q': quiet = true; anole_progress_set_quiet(true); break;
		case 'h': fputs(build_help, stdout); store_cli_release(&store); return 0;
		default:
			if ((ret = store_cli_opt(&store, "os build", opt, optarg))) {
				store_cli_release(&store);
				return ret;
			}
		}
	}
	ret = -1;
	if (optind != argc)
		ret = usage_error("build", "takes no arguments besides options");
	else if (!o.rootfs == !o.from)
		ret = usage_error("build", "takes --rootfs DIR or --from REF (one of them)");
	else if (!o.version || !o.key || !o.output)
		ret = usage_error("build", "--version, --key and -o are required");
	else if (o.policy && !o.from)
		ret = usage_error("build", "--policy goes with --from");
	if (ret >= 0) {
		store_cli_release(&store);
		return ret;
	}
	o.store = &store.o;
	anole_output_cleanup_on_signals();
	struct strbuf rep = STRBUF_INIT;
	ret = anole_os_build(&o, &rep);
	store_cli_release(&store);
	if (!ret && !quiet)
		printf("%s: %s", o.output, rep.buf);
	strbuf_release(&rep);
	return ret ? 1 : 0;
}

/* -------------------------------------------------------------- install */

static const char install_help[] =
"usage: anole os install OS_IMAGE --disk DISK.img --key PUB.pem [--size N]\n"
"\n"
"Lay out a new disk (an image file; it appears only when complete): an MBR with\n"
"syslinux, the boot partition (an EFI system partition with syslinux.efi too),\n"
"slots A and B, the A/B boot state and a data partition for the /etc and /var\n"
"overlays. OS_IMAGE goes into slot A after its signature verifies with PUB.pem,\n"
"which the disk keeps as its trust anchor. Boots under BIOS or UEFI:\n"
"  qemu-system-x86_64 -m 1G -nographic -drive file=DISK.img,format=raw\n"
"  ... -bios /usr/share/ovmf/OVMF.fd (Debian's ovmf)\n"
"\n"
"options:\n"
"      --disk FILE        the disk image to create (replaced if it exists)\n"
"      --key PUB.pem      the public key that upgrades must be signed with\n"
"      --size N           whole disk size (default: slots + boot + --data-size)\n"
"      --slot-size N      each slot's size (default: max(256M, 2 x root image))\n"
"      --data-size N      the data partition (default 256M; with --size: the rest)\n"
"  -q, --quiet            no progress\n"
"  -h, --help             this help\n";

static int os_install(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "slot-size", required_argument, NULL, OPT_SLOT_SIZE },
		{ "data-size", required_argument, NULL, OPT_DATA_SIZE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct anole_os_install_opts o = { 0 };
	int opt;

	while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DISK: o.disk = optarg; break;
		case OPT_KEY: o.pubkey = optarg; break;
		case OPT_SIZE:
			if (parse_size_opt("install", "--size", optarg, &o.size)) return 2;
			break;
		case OPT_SLOT_SIZE:
			if (parse_size_opt("install", "--slot-size", optarg, &o.slot_size)) return 2;
			break;
		case OPT_DATA_SIZE:
			if (parse_size_opt("install", "--data-size", optarg, &o.data_size)) return 2;
			break;
		case 'q': anole_progress_set_quiet(true); break;
		case 'h': fputs(install_help, stdout); return 0;
		default: return usage_error("install", "unknown option");
		}
	}
	if (optind + 1 != argc)
		return usage_error("install", "takes exactly one OS image");
	if (!o.disk || !o.pubkey)
		return usage_error("install", "--disk and --key are required");
	o.image = argv[optind];
	anole_output_cleanup_on_signals();
	return anole_os_install(&o) ? 1 : 0;
}

/* -------------------------------------------------------------- upgrade */

static const char upgrade_help[] =
"usage: anole os upgrade OS_IMAGE|REF [--disk DISK] [--tries N] [--json]\n"
"\n"
"Verify OS_IMAGE against the disk's installed key, write it into the slot not\n"
"in use, and make that slot the next boot with N tries (default 3). REF is an\n"
"OS image published with `anole os push` (docker://HOST/REPO:TAG, oci:DIR:TAG):\n"
"its signed manifest is fetched and verified first, then only the chunks the\n"
"slot in use does not hold already (the rest is copied from it). If no boot\n"
"of it runs mark-good within N tries, the disk goes back to the good slot. An\n"
"unsigned, wrongly signed or tampered image is refused and the slot in use is\n"
"never touched; an upgrade cut short leaves the previous slot booting.\n"
"Run on the booted system, it upgrades the disk the system booted from and\n"
"never writes the running slot. OS_IMAGE is read once, front to back: a file,\n"
"a pipe, or a block device holding the image.\n"
"\n"
"options:\n"
"      --disk DISK        the disk, image file or block device (default inside\n"
"                         an anole OS: its boot disk)\n"
"      --tries N          boots the new slot gets to be marked good (1-255)\n"
"      --json             the result as JSON (with bytes_fetched)\n"
"  -q, --quiet            no progress or summary\n"
"  -h, --help             this help\n"
"registry options (with REF):\n"
STORE_HELP;

static int parse_disk_only(const char *verb, const char *help, int argc, char **argv,
			   const char **disk, bool *json, int *slot, unsigned *tries, bool *quiet,
			   struct store_cli *store)
{
	static const struct option longopts[] = {
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "slot", required_argument, NULL, OPT_SLOT },
		{ "tries", required_argument, NULL, OPT_TRIES },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		STORE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DISK: *disk = optarg; break;
		case OPT_JSON:
			if (!json) return usage_error(verb, "has no --json");
			*json = true;
			break;
		case OPT_SLOT:
			if (!slot) return usage_error(verb, "has no --slot");
			if ((*slot = anole_slot_parse(optarg)) < 0)
				return usage_error(verb, "--slot takes A or B");
			break;
		case OPT_TRIES: {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (!tries) return usage_error(verb, "has no --tries");
			if (*end || v < 1 || v > 255)
				return usage_error(verb, "--tries takes 1 to 255");
			*tries = (unsigned)v;
			break;
		}
		case 'q': *quiet = true; anole_progress_set_quiet(true); break;
		case 'h': fputs(help, stdout); return 0;
		default:
			if (!store)
				return usage_error(verb, "unknown option");
			if ((ret = store_cli_opt(store, verb, opt, optarg)))
				return ret;
		}
	}
	if (!*disk && !(*disk = anole_os_booted_disk()))
		return usage_error(verb, "--disk is required outside an anole OS");
	return -1;
}

static int os_upgrade(int argc, char **argv)
{
	struct anole_os_upgrade_opts o = { 0 };
	struct store_cli store = { 0 };
	bool quiet = false;
	int ret = parse_disk_only("upgrade", upgrade_help, argc, argv, &o.disk, &o.json, NULL,
				  &o.tries, &quiet, &store);

	if (ret < 0 && optind + 1 != argc)
		ret = usage_error("upgrade", "takes exactly one OS image or reference");
	if (ret >= 0) {
		store_cli_release(&store);
		return ret;
	}
	o.image = argv[optind];
	o.store = &store.o;
	anole_output_cleanup_on_signals();
	struct strbuf rep = STRBUF_INIT;
	ret = anole_os_upgrade_ref(&o, &rep);
	if (!ret && o.json)
		fputs(rep.buf, stdout);
	else if (!ret && !quiet)
		printf("%s: %s", o.disk, rep.buf);
	strbuf_release(&rep);
	store_cli_release(&store);
	return ret ? 1 : 0;
}

static const char push_help[] =
"usage: anole os push OS_IMAGE DEST [--chunk-size N] [--json]\n"
"\n"
"Publish an OS image as an anole image (docs/oci.md): its manifest, signature,\n"
"kernel, initramfs and root image become the files of a chunked image at DEST\n"
"(docker://HOST/REPO:TAG or oci:DIR:TAG), whose chunk digests let `anole os\n"
"upgrade DEST` fetch only what the installed slot lacks. Nothing is signed\n"
"here: the OS image's own signature is what upgrade checks.\n"
"\n"
"options:\n"
"      --chunk-size N     chunk size (default 4K: one EROFS block, so that a file\n"
"                         a new package moved is still found)\n"
"      --json             the result as JSON\n"
"  -q, --quiet            no summary\n"
"  -h, --help             this help\n"
STORE_HELP;

static int os_push(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chunk-size", required_argument, NULL, OPT_CHUNK_SIZE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		STORE_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct anole_os_push_opts o = { 0 };
	struct store_cli store = { 0 };
	bool json = false, quiet = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_CHUNK_SIZE:
			if (parse_size_opt("push", "--chunk-size", optarg, &o.chunk_size)) {
				store_cli_release(&store);
				return 2;
			}
			break;
		case OPT_JSON: json = true; break;
		case 'q':
			/* the push's per-blob notes ("already has") too */
			quiet = true;
			anole_progress_set_quiet(true);
			anole_log_set_level(ANOLE_LOG_WARN);
			break;
		case 'h': fputs(push_help, stdout); store_cli_release(&store); return 0;
		default:
			if ((ret = store_cli_opt(&store, "os push", opt, optarg))) {
				store_cli_release(&store);
				return ret;
			}
		}
	}
	if (optind + 2 != argc) {
		store_cli_release(&store);
		return usage_error("push", "takes an OS image and a destination");
	}
	o.image = argv[optind];
	o.dest = argv[optind + 1];
	o.store = &store.o;
	struct strbuf rep = STRBUF_INIT;
	ret = anole_os_push(&o, &rep, json);
	if (!ret && (json || !quiet))
		fputs(rep.buf, stdout);
	strbuf_release(&rep);
	store_cli_release(&store);
	return ret ? 1 : 0;
}

static const char rollback_help[] =
"usage: anole os rollback [--disk DISK]\n"
"\n"
"Make the other slot (it must hold a valid image) the next boot.\n"
"\n"
"options:\n"
"      --disk DISK        the disk (default inside an anole OS: its boot disk)\n"
"  -q, --quiet            no summary\n"
"  -h, --help             this help\n";

static int os_rollback(int argc, char **argv)
{
	const char *disk = NULL;
	bool quiet = false;
	int ret = parse_disk_only("rollback", rollback_help, argc, argv, &disk, NULL, NULL, NULL, &quiet, NULL);

	if (ret >= 0)
		return ret;
	if (optind != argc)
		return usage_error("rollback", "takes no arguments besides options");
	struct strbuf rep = STRBUF_INIT;
	ret = anole_os_rollback(disk, &rep);
	if (!ret && !quiet)
		printf("%s: %s", disk, rep.buf);
	strbuf_release(&rep);
	return ret ? 1 : 0;
}

static const char status_help[] =
"usage: anole os status [--disk DISK] [--json]\n"
"\n"
"Print the boot state: the next slot, tries left, the good slot, each slot's\n"
"version and validity.\n"
"\n"
"options:\n"
"      --disk DISK        the disk (default inside an anole OS: its boot disk)\n"
"      --json             the state as JSON\n"
"  -h, --help             this help\n";

static int os_status(int argc, char **argv)
{
	const char *disk = NULL;
	bool json = false, quiet = false;
	int ret = parse_disk_only("status", status_help, argc, argv, &disk, &json, NULL, NULL, &quiet, NULL);

	if (ret >= 0)
		return ret;
	if (optind != argc)
		return usage_error("status", "takes no arguments besides options");
	struct strbuf out = STRBUF_INIT;
	ret = anole_os_status(disk, json, &out);
	fputs(out.buf ? out.buf : "", stdout);
	strbuf_release(&out);
	return ret ? 1 : 0;
}

static const char verify_help[] =
"usage: anole os verify [--disk DISK] [--slot A|B] [--json]\n"
"\n"
"Check a slot's root image, kernel and initramfs against its manifest, whose\n"
"signature is checked with the installed key. Default slot: on the booted\n"
"system the running one, on any other disk the one booted next.\n"
"Exit 1 when anything differs.\n"
"\n"
"options:\n"
"      --disk DISK        the disk (default inside an anole OS: its boot disk)\n"
"      --slot A|B         the slot to check\n"
"      --json             the result as JSON\n"
"  -h, --help             this help\n";

static int os_verify(int argc, char **argv)
{
	const char *disk = NULL;
	bool json = false, quiet = false;
	int slot = -1;
	int ret = parse_disk_only("verify", verify_help, argc, argv, &disk, &json, &slot, NULL, &quiet, NULL);

	if (ret >= 0)
		return ret;
	if (optind != argc)
		return usage_error("verify", "takes no arguments besides options");
	struct strbuf out = STRBUF_INIT;
	ret = anole_os_verify(disk, slot, json, &out);
	fputs(out.buf ? out.buf : "", stdout);
	strbuf_release(&out);
	return ret ? 1 : 0;
}

static const char mark_good_help[] =
"usage: anole os mark-good [--slot A|B] | --disk DISK --slot A|B\n"
"\n"
"Mark a slot good: the health check's verdict. On the booted system the\n"
"default is the running slot (the one its initramfs mounted); on any other\n"
"disk, --slot is required. /run/anole-os/anole-os-boot mark-good does the\n"
"same without anole.\n"
"\n"
"options:\n"
"      --disk DISK        the disk (default inside an anole OS: its boot disk)\n"
"      --slot A|B         the slot to mark\n"
"  -q, --quiet            no summary\n"
"  -h, --help             this help\n";

static int os_mark_good(int argc, char **argv)
{
	const char *disk = NULL;
	bool quiet = false;
	int slot = -1;
	int ret = parse_disk_only("mark-good", mark_good_help, argc, argv, &disk, NULL, &slot, NULL, &quiet, NULL);

	if (ret >= 0)
		return ret;
	if (optind != argc)
		return usage_error("mark-good", "takes no arguments besides options");
	struct strbuf rep = STRBUF_INIT;
	ret = anole_os_mark_good(disk, slot, &rep);
	if (!ret && !quiet)
		printf("%s: %s", disk, rep.buf);
	strbuf_release(&rep);
	return ret ? 1 : 0;
}

static const struct anole_cmd os_cmds[] = {
	{ "build", os_build, "make a signed OS image of a rootfs (kernel, initramfs, EROFS root)" },
	{ "install", os_install, "lay out a bootable A/B disk with an OS image in slot A" },
	{ "upgrade", os_upgrade, "write a signed OS image into the inactive slot, boot it next" },
	{ "push", os_push, "publish an OS image as a chunked anole image (registry, layout)" },
	{ "rollback", os_rollback, "boot the other slot next" },
	{ "status", os_status, "show the A/B boot state" },
	{ "verify", os_verify, "check a slot against its signed manifest" },
	{ "mark-good", os_mark_good, "mark a slot good (the health check's verdict)" },
	{ NULL, NULL, NULL },
};

int cmd_os(int argc, char **argv)
{
	anole_log_set_level(ANOLE_LOG_INFO);
	return anole_dispatch("os", os_cmds, argc, argv);
}
