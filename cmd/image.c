// SPDX-License-Identifier: Apache-2.0
/* `anole image <verb>`: thin option parsing over the image library. */
#include "anole.h"
#include "store_opts.h"
#include "anole/cipher.h"
#include "anole/compress.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/erofs.h"
#include "anole/image.h"
#include "anole/convert.h"
#include "anole/oci.h"
#include "anole/policy.h"
#include "anole/ref.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OPT_JSON = 256, OPT_QUIET, OPT_TIMESTAMP, OPT_UUID, OPT_LABEL, OPT_THREADS,
       OPT_CHUNK, OPT_BLOB, OPT_DEVICE, OPT_NO_DEDUPE, OPT_NO_OWNER, OPT_VERBOSE,
       OPT_MAX_ERRORS, OPT_BLOB_DIR, OPT_COMPRESS, OPT_DIGEST, OPT_LAYER, OPT_PLATFORM, OPT_CHUNK_DICT,
       OPT_FRAGMENTS, OPT_NO_ZTAIL, OPT_HINTS, OPT_FETCH_UNIT, OPT_POLICY,
       OPT_ENCRYPT_KEY, OPT_CIPHER };

struct devlist {
	const char **v;
	size_t n, alloc;
};

static void devlist_add(struct devlist *d, const char *path)
{
	xgrow(&d->v, &d->alloc, d->n + 1, sizeof(*d->v));
	d->v[d->n++] = path;
}

static int usage_error(const char *verb, const char *msg)
{
	fprintf(stderr, "anole image %s: %s\nTry 'anole image %s --help'.\n", verb, msg, verb);
	return 2;
}

static void common_flag(int opt)
{
	if (opt == OPT_QUIET) {
		anole_progress_set_quiet(true);
		anole_log_set_level(ANOLE_LOG_ERROR);
	} else if (opt == OPT_VERBOSE) {
		anole_log_set_level(anole_log_get_level() >= ANOLE_LOG_INFO ?
				    ANOLE_LOG_DEBUG : ANOLE_LOG_INFO);
	}
}

static int parse_uuid(const char *s, uint8_t uuid[16])
{
	int n = 0;

	for (; *s && n < 32; s++) {
		int v;

		if (*s == '-')
			continue;
		if (*s >= '0' && *s <= '9') v = *s - '0';
		else if (*s >= 'a' && *s <= 'f') v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F') v = *s - 'A' + 10;
		else return -EINVAL;
		if (n % 2 == 0)
			uuid[n / 2] = (uint8_t)(v << 4);
		else
			uuid[n / 2] |= (uint8_t)v;
		n++;
	}
	return n == 32 && !*s ? 0 : -EINVAL;
}

static int parse_epoch(const char *s, int64_t *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Options shared by build and convert: 0, or the exit status of a usage error. */
static int chunk_opt(const char *verb, const char *arg, uint64_t *out)
{
	unsigned long long v;

	if (anole_parse_size(arg, &v) || v < 4096 || v > (64ULL << 20) || (v & (v - 1)))
		return usage_error(verb, "--chunk-size must be a power of two from 4K to 64M");
	*out = v;
	return 0;
}

/* Checked here too, so that a bad value is a usage error before any work. */
static int compress_opt(const char *arg, const char **spec)
{
	enum anole_compress_alg alg;
	int level;

	if (anole_compress_parse("--compress", arg, &alg, &level))
		return 2;
	*spec = arg;
	return 0;
}

static int digest_opt(const char *arg, int *alg_out)
{
	enum anole_digest_alg alg;

	if (anole_digest_from_name(arg, &alg))
		return 2;
	*alg_out = (int)alg;
	return 0;
}

/* ---------------------------------------------------------------- build */

/* --encrypt-key and --cipher, the same for build and convert */
#define ENCRYPT_HELP \
"      --encrypt-key KEY  encrypt every chunk of the transport blobs with the\n" \
"                         key in file KEY (32 bytes, or 64 hex digits: e.g.\n" \
"                         `openssl rand -hex 32 > KEY`); the key stays out of\n" \
"                         the image; mount with --decrypt-key KEY\n" \
"      --cipher ALG       aes-256-ctr (default) or sm4-ctr\n"

static const char build_help[] =
"usage: anole image build SRC_DIR -o IMAGE [options]\n"
"       anole image build --layer TAR [--layer TAR]... -o IMAGE --blob-dir DIR [options]\n"
"\n"
"Write an EROFS image of SRC_DIR that Linux mounts with `mount -t erofs`.\n"
"Files keep every type, owner, mode, nanosecond mtime, xattr and ACL;\n"
"hard links stay one inode; holes in sparse files take no space.\n"
"\n"
"options:\n"
"  -o, --output IMAGE     the image to write (replaced atomically)\n"
"      --chunk-size N     store regular files as chunks of N bytes (power of\n"
"                         two, 4K..64M); identical chunks are stored once\n"
"      --blob FILE        chunk data goes to FILE, an extra device; mount with\n"
"                         -o device=FILE (chunk size default 1M)\n"
"      --blob-dir DIR     chunk data goes to a transport blob in DIR named by\n"
"                         its sha256, each chunk compressed on its own, for\n"
"                         `anole image mount --blobs` (lazy loading); the\n"
"                         chunk table is appended to IMAGE\n"
"      --fetch-unit N     with --blob-dir: chunks larger than N are stored as\n"
"                         pieces of N bytes, each compressed and verified on\n"
"                         its own, so that a lazy mount fetches N, not a\n"
"                         whole chunk, for one page (power of two, 4K..64M;\n"
"                         default 64K; the chunk size: whole chunks)\n"
"      --compress ALG[,LEVEL]  with --blob-dir: zstd (default; levels 1-22),\n"
"                         lz4 (1-12, above 1: LZ4HC) or none\n"
"      --digest ALG       chunk digest: sha256 (default) or sm3\n"
ENCRYPT_HELP
"  -z, --compress-data ALG[,LEVEL]\n"
"                         compress file data, decompressed by the kernel on\n"
"                         read: lz4, lz4hc (levels 3-12, default 9), zstd\n"
"                         (1-22, default 3), lzma (0-9, 100-109 extreme;\n"
"                         default 6) or deflate (1-12, default 6)\n"
"  -C, --pcluster-size N  largest compressed unit, a multiple of 4K up to 1M\n"
"                         (default 4K); bigger compresses better, costs more\n"
"                         per random read\n"
"      --fragments        pack file tails and small files into one compressed\n"
"                         inode (smaller images; needs Linux 6.1)\n"
"      --no-ztailpacking  do not inline compressed tails after the indexes\n"
"      --compress-hints FILE  per-file rules, one per line:\n"
"                         ALG[,LEVEL]|none [PCLUSTER] REGEX, matched against\n"
"                         paths relative to SRC_DIR; the first match wins\n"
"      --layer TAR        instead of SRC_DIR: tar layers (plain, gzip, zstd...),\n"
"                         lowest first, merged with overlay whiteouts; each\n"
"                         layer's new chunks go to its own blob in --blob-dir\n"
"      --timestamp T      image time, seconds since the epoch (default:\n"
"                         $SOURCE_DATE_EPOCH, else now)\n"
"      --uuid UUID        volume UUID (default: with a fixed time, from\n"
"                         --timestamp or $SOURCE_DATE_EPOCH, derived from the\n"
"                         content, so the same tree gives a byte-identical\n"
"                         image; else random)\n"
"      --label NAME       volume name, up to 15 bytes\n"
"      --threads N        worker threads (default: one per CPU)\n"
"      --no-dedupe        do not share blocks between identical files\n"
"      --json             print the build summary as JSON on stdout\n"
"  -q, --quiet            no progress, no warnings\n"
"  -v, --verbose          more messages\n"
"  -h, --help             this help\n";

static void print_build_stats(const struct anole_build_opts *o,
			      const struct anole_build_stats *st, bool json)
{
	if (json) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_addstr(&sb, "{\"image\":");
		strbuf_add_json_string(&sb, o->output, strlen(o->output));
		strbuf_addf(&sb, ",\"image_bytes\":%llu,\"inodes\":%llu,\"files\":%llu,"
			    "\"dirs\":%llu,\"bytes_in\":%llu,\"compact_inodes\":%llu,"
			    "\"extended_inodes\":%llu,\"shared_xattrs\":%llu,"
			    "\"files_deduped\":%llu,\"chunks\":%llu,\"chunks_deduped\":%llu",
			    (unsigned long long)st->image_bytes, (unsigned long long)st->inodes,
			    (unsigned long long)st->files, (unsigned long long)st->dirs,
			    (unsigned long long)st->bytes_in,
			    (unsigned long long)st->compact_inodes,
			    (unsigned long long)st->extended_inodes,
			    (unsigned long long)st->shared_xattrs,
			    (unsigned long long)st->files_deduped,
			    (unsigned long long)st->chunks,
			    (unsigned long long)st->chunks_deduped);
		if (o->data_compress) {
			strbuf_addstr(&sb, ",\"compression\":");
			strbuf_add_json_string(&sb, o->data_compress, strlen(o->data_compress));
			strbuf_addf(&sb, ",\"pcluster_size\":%u,\"compressed_files\":%llu",
				    o->pcluster_size ? o->pcluster_size : 4096,
				    (unsigned long long)st->compressed_files);
		}
		if (st->nblobs) {
			strbuf_addf(&sb, ",\"blob_bytes\":%llu,\"blobs\":[",
				    (unsigned long long)st->blob_bytes);
			for (unsigned i = 0; i < st->nblobs; i++)
				strbuf_addf(&sb, "%s{\"digest\":\"%s\",\"device\":%u,\"bytes\":%llu,"
					    "\"uncompressed_bytes\":%llu,\"chunks\":%u}", i ? "," : "",
					    st->blobs[i].name, st->blobs[i].device_id,
					    (unsigned long long)st->blobs[i].compressed_size,
					    (unsigned long long)st->blobs[i].uncompressed_size,
					    st->blobs[i].nchunks);
			strbuf_addstr(&sb, "],\"layer_devices\":[");
			for (unsigned i = 0; i < o->nlayers; i++)
				strbuf_addf(&sb, "%s%u", i ? "," : "", st->layer_device[i]);
			strbuf_addstr(&sb, "]");
		} else if (o->blob_path || o->blob_dir) {
			strbuf_addstr(&sb, ",\"blob\":");
			if (o->blob_path) {
				strbuf_add_json_string(&sb, o->blob_path, strlen(o->blob_path));
			} else {
				struct strbuf p = STRBUF_INIT;

				strbuf_addf(&p, "%s/%s", o->blob_dir, st->blob_digest);
				strbuf_add_json_string(&sb, p.buf, p.len);
				strbuf_release(&p);
			}
			strbuf_addf(&sb, ",\"blob_bytes\":%llu,\"blob_uncompressed_bytes\":%llu,"
				    "\"blob_digest\":\"sha256:%s\"",
				    (unsigned long long)st->blob_bytes,
				    (unsigned long long)st->blob_uncompressed_bytes, st->blob_digest);
		}
		strbuf_addstr(&sb, "}\n");
		fputs(sb.buf, stdout);
		strbuf_release(&sb);
		return;
	}
	anole_info("%s: %llu inodes (%llu files, %llu dirs), %llu bytes of data -> %llu byte image",
		   o->output, (unsigned long long)st->inodes, (unsigned long long)st->files,
		   (unsigned long long)st->dirs, (unsigned long long)st->bytes_in,
		   (unsigned long long)st->image_bytes);
	if (o->data_compress)
		anole_info("%llu files compressed with %s (%.2f:1 overall)",
			   (unsigned long long)st->compressed_files, o->data_compress,
			   st->image_bytes ? (double)st->bytes_in / (double)st->image_bytes : 0.0);
}

static int image_build(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "chunk-size", required_argument, NULL, OPT_CHUNK },
		{ "fetch-unit", required_argument, NULL, OPT_FETCH_UNIT },
		{ "blob", required_argument, NULL, OPT_BLOB },
		{ "blob-dir", required_argument, NULL, OPT_BLOB_DIR },
		{ "compress", required_argument, NULL, OPT_COMPRESS },
		{ "digest", required_argument, NULL, OPT_DIGEST },
		{ "encrypt-key", required_argument, NULL, OPT_ENCRYPT_KEY },
		{ "cipher", required_argument, NULL, OPT_CIPHER },
		{ "compress-data", required_argument, NULL, 'z' },
		{ "pcluster-size", required_argument, NULL, 'C' },
		{ "fragments", no_argument, NULL, OPT_FRAGMENTS },
		{ "no-ztailpacking", no_argument, NULL, OPT_NO_ZTAIL },
		{ "compress-hints", required_argument, NULL, OPT_HINTS },
		{ "layer", required_argument, NULL, OPT_LAYER },
		{ "timestamp", required_argument, NULL, OPT_TIMESTAMP },
		{ "uuid", required_argument, NULL, OPT_UUID },
		{ "label", required_argument, NULL, OPT_LABEL },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "no-dedupe", no_argument, NULL, OPT_NO_DEDUPE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct anole_build_opts o = { 0 };     /* the library's defaults */
	struct anole_build_stats st = { 0 };
	const char *encrypt_key_file = NULL;
	enum anole_cipher_alg cipher = ANOLE_CIPHER_AES256_CTR;
	struct anole_chunk_key key;
	struct devlist layers = { 0 };
	bool json = false;
	const char *env;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "o:z:C:qvh", longopts, NULL)) != -1) {
		unsigned long long v;

		switch (opt) {
		case 'o': o.output = optarg; break;
		case 'z': o.data_compress = optarg; break;
		case 'C':
			if (anole_parse_size(optarg, &v) || v < 4096 || v > (1u << 20) || v % 4096)
				return usage_error("build", "--pcluster-size takes a multiple of 4K up to 1M");
			o.pcluster_size = (uint32_t)v;
			break;
		case OPT_FRAGMENTS: o.fragments = true; break;
		case OPT_NO_ZTAIL: o.no_ztailpacking = true; break;
		case OPT_HINTS: o.compress_hints = optarg; break;
		case OPT_CHUNK:
			if ((ret = chunk_opt("build", optarg, &o.chunk_size)))
				return ret;
			break;
		case OPT_FETCH_UNIT:
			if (anole_parse_size(optarg, &v) || v < 4096 || v > (64ULL << 20) || (v & (v - 1)))
				return usage_error("build", "--fetch-unit must be a power of two from 4K to 64M");
			o.fetch_unit = (uint32_t)v;
			break;
		case OPT_BLOB: o.blob_path = optarg; break;
		case OPT_BLOB_DIR: o.blob_dir = optarg; break;
		case OPT_LAYER:
			xgrow(&layers.v, &layers.alloc, layers.n + 1, sizeof(*layers.v));
			layers.v[layers.n++] = optarg;
			break;
		case OPT_COMPRESS:
			if ((ret = compress_opt(optarg, &o.compress)))
				return ret;
			break;
		case OPT_DIGEST:
			if ((ret = digest_opt(optarg, &o.chunk_digest)))
				return ret;
			break;
		case OPT_ENCRYPT_KEY: encrypt_key_file = optarg; break;
		case OPT_CIPHER:
			if (anole_cipher_from_name(optarg, &cipher))
				return 2;
			break;
		case OPT_TIMESTAMP:
			if (parse_epoch(optarg, &o.timestamp))
				return usage_error("build", "--timestamp takes seconds since the epoch");
			o.have_timestamp = true;
			break;
		case OPT_UUID:
			if (parse_uuid(optarg, o.uuid))
				return usage_error("build", "--uuid takes 32 hex digits (dashes allowed)");
			o.have_uuid = true;
			break;
		case OPT_LABEL:
			if (strlen(optarg) > 15)
				return usage_error("build", "--label is at most 15 bytes");
			o.label = optarg;
			break;
		case OPT_THREADS:
			if (anole_parse_size(optarg, &v) || v > 1024)
				return usage_error("build", "--threads takes a number up to 1024");
			o.threads = (unsigned)v;
			break;
		case OPT_NO_DEDUPE: o.no_dedupe_files = true; break;
		case OPT_JSON: json = true; break;
		case 'q': common_flag(OPT_QUIET); break;
		case 'v': common_flag(OPT_VERBOSE); break;
		case 'h': fputs(build_help, stdout); return 0;
		default: return usage_error("build", "unknown option");
		}
	}
	if (layers.n) {
		if (optind != argc)
			return usage_error("build", "takes --layer or a source directory, not both");
		if (!o.blob_dir)
			return usage_error("build", "--layer needs --blob-dir");
		o.layers = layers.v;
		o.nlayers = (unsigned)layers.n;
	} else if (optind + 1 != argc) {
		return usage_error("build", "takes exactly one source directory");
	}
	if (!o.output)
		return usage_error("build", "-o IMAGE is required");
	if (o.blob_path && o.blob_dir)
		return usage_error("build", "--blob and --blob-dir exclude each other");
	o.src_dir = layers.n ? NULL : argv[optind];
	if (!o.have_timestamp && (env = getenv("SOURCE_DATE_EPOCH")) && *env) {
		if (parse_epoch(env, &o.timestamp))
			return usage_error("build", "SOURCE_DATE_EPOCH is not a number");
		o.have_timestamp = true;
	}
	if (!o.have_timestamp)
		o.timestamp = (int64_t)time(NULL);

	if (encrypt_key_file && !o.blob_dir)
		return usage_error("build", "--encrypt-key encrypts the transport blobs of --blob-dir");
	if (encrypt_key_file) {
		if (anole_chunk_key_load(encrypt_key_file, cipher, &key))
			return 1;
		o.encrypt_key = &key;
	}
	ret = anole_image_build(&o, &st);
	if (encrypt_key_file)
		anole_chunk_key_wipe(&key);
	if (!ret)
		print_build_stats(&o, &st, json);
	anole_build_stats_free(&st);
	free(layers.v);
	return ret ? 1 : 0;
}

/* ---------------------------------------------------------------- check */

static const char check_help[] =
"usage: anole image check IMAGE [--device BLOB]... [options]\n"
"\n"
"Walk every structure of IMAGE and read every reachable byte. Each problem\n"
"is reported with the path or nid; the exit status is 1 if any was found.\n"
"Hostile images are expected: the checker never trusts a length or offset.\n"
"\n"
"options:\n"
"      --device BLOB      an extra device (blob), in device-table order\n"
"      --max-errors N     stop after N problems (default 100)\n"
"      --json             print the result as JSON on stdout\n"
"  -q, --quiet            print nothing but problems\n"
"  -h, --help             this help\n";

static int image_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "max-errors", required_argument, NULL, OPT_MAX_ERRORS },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct devlist devs = { 0 };
	struct anole_check_opts o = { 0 };
	struct anole_check_result res = { 0 };
	bool json = false, quiet = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
		unsigned long long v;

		switch (opt) {
		case OPT_DEVICE: devlist_add(&devs, optarg); break;
		case OPT_MAX_ERRORS:
			if (anole_parse_size(optarg, &v) || !v || v > 1000000)
				return usage_error("check", "--max-errors takes a positive number");
			o.max_errors = (unsigned)v;
			break;
		case OPT_JSON: json = true; break;
		case 'q': quiet = true; anole_progress_set_quiet(true); break;
		case 'v': common_flag(OPT_VERBOSE); break;
		case 'h': fputs(check_help, stdout); return 0;
		default: return usage_error("check", "unknown option");
		}
	}
	if (optind + 1 != argc)
		return usage_error("check", "takes exactly one image");
	o.image = argv[optind];
	o.devices = devs.v;
	o.ndevices = (unsigned)devs.n;
	ret = anole_image_check(&o, &res);
	free(devs.v);
	if (json) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_addstr(&sb, "{\"image\":");
		strbuf_add_json_string(&sb, o.image, strlen(o.image));
		strbuf_addf(&sb, ",\"ok\":%s,\"errors\":%u,\"inodes\":%llu,\"dirs\":%llu,"
			    "\"files\":%llu,\"bytes_read\":%llu,\"compressed_extents\":%llu}\n",
			    ret ? "false" : "true",
			    res.errors, (unsigned long long)res.inodes,
			    (unsigned long long)res.dirs, (unsigned long long)res.files,
			    (unsigned long long)res.bytes_read,
			    (unsigned long long)res.compressed_extents);
		fputs(sb.buf, stdout);
		strbuf_release(&sb);
	} else if (!ret && !quiet) {
		printf("%s: ok, %llu inodes (%llu dirs, %llu files), %llu bytes read",
		       o.image, (unsigned long long)res.inodes, (unsigned long long)res.dirs,
		       (unsigned long long)res.files, (unsigned long long)res.bytes_read);
		if (res.compressed_extents)
			printf(", %llu compressed extents decoded",
			       (unsigned long long)res.compressed_extents);
		putchar('\n');
	} else if (ret == -EFSCORRUPTED) {
		fprintf(stderr, "%s: %u problem%s found\n", o.image, res.errors,
			res.errors == 1 ? "" : "s");
	}
	return ret ? 1 : 0;
}

/* -------------------------------------------------------------- inspect */

static const char inspect_help[] =
"usage: anole image inspect IMAGE [PATH] [--device BLOB]... [--json]\n"
"\n"
"Without PATH: the superblock, feature bits, counts and sizes.\n"
"With PATH: that inode's fields, xattrs, and data layout or chunk map.\n"
"\n"
"options:\n"
"      --device BLOB      an extra device (blob), in device-table order\n"
"      --json             JSON output\n"
"  -h, --help             this help\n";

static int image_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct devlist devs = { 0 };
	struct anole_inspect_opts o = { 0 };
	struct strbuf out = STRBUF_INIT;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DEVICE: devlist_add(&devs, optarg); break;
		case OPT_JSON: o.json = true; break;
		case 'h': fputs(inspect_help, stdout); return 0;
		default: return usage_error("inspect", "unknown option");
		}
	}
	if (optind >= argc || argc - optind > 2)
		return usage_error("inspect", "takes an image and an optional path");
	o.image = argv[optind];
	o.path = argc - optind == 2 ? argv[optind + 1] : NULL;
	o.devices = devs.v;
	o.ndevices = (unsigned)devs.n;
	ret = anole_image_inspect(&o, &out);
	free(devs.v);
	if (!ret)
		fputs(out.buf, stdout);
	strbuf_release(&out);
	return ret ? 1 : 0;
}

/* --------------------------------------------------------------- unpack */

static const char unpack_help[] =
"usage: anole image unpack IMAGE DIR [--device BLOB]... [options]\n"
"\n"
"Extract every file of IMAGE into DIR (created; must be empty if it exists)\n"
"with owners, modes, times, xattrs, ACLs, device nodes and hard links.\n"
"Nothing is ever written outside DIR, whatever names or symlinks IMAGE holds.\n"
"\n"
"options:\n"
"      --device BLOB      an extra device (blob), in device-table order\n"
"      --no-owner         do not change owners (default when not root)\n"
"  -q, --quiet            no progress\n"
"  -h, --help             this help\n";

static int image_unpack(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "device", required_argument, NULL, OPT_DEVICE },
		{ "no-owner", no_argument, NULL, OPT_NO_OWNER },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct devlist devs = { 0 };
	struct anole_unpack_opts o = { 0 };
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "qh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DEVICE: devlist_add(&devs, optarg); break;
		case OPT_NO_OWNER: o.no_owner = true; break;
		case 'q': common_flag(OPT_QUIET); break;
		case 'h': fputs(unpack_help, stdout); return 0;
		default: return usage_error("unpack", "unknown option");
		}
	}
	if (argc - optind != 2)
		return usage_error("unpack", "takes an image and a destination directory");
	o.image = argv[optind];
	o.dest = argv[optind + 1];
	o.devices = devs.v;
	o.ndevices = (unsigned)devs.n;
	ret = anole_image_unpack(&o);
	free(devs.v);
	return ret ? 1 : 0;
}

#define LAZY_MOUNT_CMDS \
	{ "mount", cmd_image_mount, "mount an image lazily from a blob store" }, \
	{ "umount", cmd_image_umount, "unmount a lazy mount and stop its daemon" }, \
	{ "stats", cmd_image_stats, "counters of a lazy mount" }, \
	{ "cache", cmd_image_cache, "list or trim the chunk cache" },

/* -------------------------------------------------------------- convert */

static const char convert_help[] =
"usage: anole image convert SRC -o DEST [options]\n"
"\n"
"Convert an OCI image to anole's accelerated form: every layer's data is\n"
"chunked (deduplicated across layers) into one blob per layer, and the\n"
"layers merged with overlay whiteouts into one EROFS metadata layer, so the\n"
"result mounts lazily with `anole image mount oci:DEST[:TAG] MNT`.\n"
"The image config is kept; the manifest names the source manifest.\n"
"\n"
"SRC and DEST are OCI image layouts, oci:DIR[:TAG] (created or updated),\n"
"or registry references, docker://HOST[:PORT]/REPO[:TAG][@DIGEST] (plain\n"
"HTTP for localhost and 127.0.0.0/8; credentials from ~/.docker/config.json\n"
"or $REGISTRY_AUTH_FILE). SRC may also be a tarball: oci-archive:FILE[:TAG]\n"
"or docker-archive:FILE[:NAME] (docker save; NAME is REPO:TAG or TAG).\n"
"References are checked part by part (docs/oci.md). Every blob read is checked\n"
"against its digest; a push uploads only blobs the registry lacks, and\n"
"the manifest last.\n"
"\n"
"options:\n"
"  -o, --output DEST      the accelerated image (oci:DIR[:TAG])\n"
"      --platform OS/ARCH pick from a multi-platform index (default: this host)\n"
"      --chunk-dict PREV  reuse every chunk a previous anole image (oci: or\n"
"                         docker://) already stores: its blobs are shared, only\n"
"                         new data makes new blobs\n"
"      --chunk-size N     chunk size (default 1M)\n"
"      --compress ALG[,LEVEL]  zstd (default; levels 1-22), lz4 (1-12, above 1:\n"
"                         LZ4HC) or none\n"
"      --digest ALG       chunk digest: sha256 (default) or sm3\n"
ENCRYPT_HELP
"      --threads N        worker threads\n"
STORE_HELP
"      --json             print the result as JSON\n"
"  -q, --quiet            no progress\n"
"  -h, --help             this help\n";

static int image_convert(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "platform", required_argument, NULL, OPT_PLATFORM },
		{ "chunk-dict", required_argument, NULL, OPT_CHUNK_DICT },
		{ "chunk-size", required_argument, NULL, OPT_CHUNK },
		{ "compress", required_argument, NULL, OPT_COMPRESS },
		{ "digest", required_argument, NULL, OPT_DIGEST },
		{ "encrypt-key", required_argument, NULL, OPT_ENCRYPT_KEY },
		{ "cipher", required_argument, NULL, OPT_CIPHER },
		{ "threads", required_argument, NULL, OPT_THREADS },
		STORE_LONGOPTS,
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct store_cli store = { 0 };
	struct oci_convert_opts o = { .store = &store.o };
	struct oci_convert_result r;
	const char *encrypt_key_file = NULL;
	enum anole_cipher_alg cipher = ANOLE_CIPHER_AES256_CTR;
	struct anole_chunk_key key;
	bool json = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
		unsigned long long v;

		switch (opt) {
		case 'o': o.dest = optarg; break;
		case OPT_PLATFORM: o.platform = optarg; break;
		case OPT_CHUNK_DICT: o.chunk_dict = optarg; break;
		case OPT_CHUNK:
			if ((ret = chunk_opt("convert", optarg, &o.chunk_size)))
				return ret;
			break;
		case OPT_COMPRESS:
			if ((ret = compress_opt(optarg, &o.compress)))
				return ret;
			break;
		case OPT_DIGEST:
			if ((ret = digest_opt(optarg, &o.chunk_digest)))
				return ret;
			break;
		case OPT_ENCRYPT_KEY: encrypt_key_file = optarg; break;
		case OPT_CIPHER:
			if (anole_cipher_from_name(optarg, &cipher))
				return 2;
			break;
		case OPT_THREADS:
			if (anole_parse_size(optarg, &v) || v > 1024)
				return usage_error("convert", "--threads takes a number up to 1024");
			o.threads = (unsigned)v;
			break;
		case OPT_JSON: json = true; break;
		case 'q': common_flag(OPT_QUIET); break;
		case 'h': fputs(convert_help, stdout); store_cli_release(&store); return 0;
		default:
			if ((ret = store_cli_opt(&store, "image convert", opt, optarg))) {
				store_cli_release(&store);
				return ret;
			}
		}
	}
	if (argc - optind != 1 || !o.dest) {
		store_cli_release(&store);
		return usage_error("convert", "takes SRC and -o DEST");
	}
	o.src = argv[optind];
	if (encrypt_key_file) {
		if (anole_chunk_key_load(encrypt_key_file, cipher, &key)) {
			store_cli_release(&store);
			return 1;
		}
		o.encrypt_key = &key;
	}
	ret = oci_convert(&o, &r);
	if (encrypt_key_file)
		anole_chunk_key_wipe(&key);
	store_cli_release(&store);
	if (ret)
		return 1;
	if (json) {
		struct strbuf dest = STRBUF_INIT;

		printf("{\"source\":\"%s\",\"manifest\":\"%s\",\"metadata\":\"%s\","
		       "\"metadata_bytes\":%llu,\"blobs\":%u,\"blob_bytes\":%llu,"
		       "\"source_layers\":%u,\"chunks\":%llu,\"chunks_deduped\":%llu",
		       r.source_manifest, r.manifest, r.metadata, (unsigned long long)r.metadata_bytes,
		       r.blobs, (unsigned long long)r.blob_bytes, r.source_layers,
		       (unsigned long long)r.chunks, (unsigned long long)r.chunks_deduped);
		if (r.pushed) {
			strbuf_add_json_string(&dest, o.dest, strlen(o.dest));
			printf(",\"pushed\":%s,\"bytes_pushed\":%llu", dest.buf,
			       (unsigned long long)r.bytes_pushed);
		}
		fputs("}\n", stdout);
		strbuf_release(&dest);
	} else {
		printf("%s -> %s: manifest %s, metadata %llu bytes, %u blob%s (%llu bytes) from %u layer%s\n",
		       o.src, o.dest, r.manifest, (unsigned long long)r.metadata_bytes, r.blobs,
		       r.blobs == 1 ? "" : "s", (unsigned long long)r.blob_bytes, r.source_layers,
		       r.source_layers == 1 ? "" : "s");
		if (r.pushed)
			printf("pushed %s: %llu bytes uploaded\n", o.dest,
			       (unsigned long long)r.bytes_pushed);
	}
	oci_convert_result_free(&r);
	return 0;
}

/* ------------------------------------------------------------ pull, push */

static const char copy_help[] =
"usage: anole image pull docker://HOST/REPO[:TAG] oci:DIR[:TAG] [options]\n"
"       anole image push oci:DIR[:TAG] docker://HOST/REPO[:TAG] [options]\n"
"\n"
"Copy an image (anole's accelerated form or any OCI image) between a\n"
"registry and an OCI image layout, byte for byte: every blob is checked\n"
"against its digest; push uploads only the blobs the registry lacks, then\n"
"the manifest.\n"
"\n"
"options:\n"
"      --policy FILE      pull: trust policy, containers-policy.json(5) (default:\n"
"                         /etc/containers/policy.json if it exists); an image it\n"
"                         requires to be signed is refused unless a signature\n"
"                         verifies, and then exactly the signed manifest is pulled\n"
STORE_HELP
"      --json             print the result as JSON\n"
"  -h, --help             this help\n";

static int image_copy(int argc, char **argv, bool push)
{
	static const struct option longopts[] = {
		STORE_LONGOPTS,
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb = push ? "push" : "pull";
	const char *policy_file = NULL;
	struct anole_policy *policy = NULL;
	char *pinned = NULL;
	struct anole_ref src, dest;
	struct store_cli store = { 0 };
	uint64_t pushed = 0;
	bool json = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: json = true; break;
		case OPT_POLICY:
			if (push) {
				store_cli_release(&store);
				return usage_error(verb, "--policy is for pull");
			}
			policy_file = optarg;
			break;
		case 'h': fputs(copy_help, stdout); store_cli_release(&store); return 0;
		default:
			if ((ret = store_cli_opt(&store, push ? "image push" : "image pull", opt, optarg))) {
				store_cli_release(&store);
				return ret;
			}
		}
	}
	if (argc - optind != 2) {
		store_cli_release(&store);
		return usage_error(verb, "takes a source and a destination");
	}
	ret = anole_ref_parse(argv[optind], ANOLE_REF_OCI, &src);
	if (!ret)
		ret = anole_ref_parse(argv[optind + 1], ANOLE_REF_OCI, &dest);
	/* trust before any byte: the policy may pin the signed manifest */
	if (!ret && !push)
		ret = anole_policy_load(policy_file, &policy);
	if (!ret)
		ret = anole_policy_pin(policy, argv[optind], &src, &store.o, &pinned);
	/* the layout's tag: the one asked for, not the signed digest */
	if (!ret && pinned && src.transport == ANOLE_REF_DOCKER && !dest.tag && src.tag)
		dest.tag = xstrdup(src.tag);
	anole_policy_free(policy);
	free(pinned);
	if (!ret && push)
		ret = oci_push(&src, &dest, &store.o, &pushed, NULL);
	else if (!ret)
		ret = oci_pull(&src, &dest, NULL, &store.o);
	anole_ref_free(&src);
	anole_ref_free(&dest);
	store_cli_release(&store);
	if (!ret && json)
		printf("{\"%s\":\"%s\",\"bytes_pushed\":%llu}\n", verb, argv[optind + 1],
		       (unsigned long long)pushed);
	else if (!ret && push)
		printf("pushed %s: %llu bytes uploaded\n", argv[optind + 1], (unsigned long long)pushed);
	return ret ? 1 : 0;
}

static int image_pull(int argc, char **argv) { return image_copy(argc, argv, false); }
static int image_push(int argc, char **argv) { return image_copy(argc, argv, true); }

static const struct anole_cmd image_cmds[] = {
	{ "build", image_build, "write an EROFS image of a directory" },
	{ "check", image_check, "verify every structure and byte of an image" },
	{ "inspect", image_inspect, "show the superblock or one path's inode" },
	{ "unpack", image_unpack, "extract an image into a directory" },
	{ "convert", image_convert, "convert an OCI image to the accelerated form" },
	{ "pull", image_pull, "copy an image from a registry to an OCI layout" },
	{ "push", image_push, "copy an image from an OCI layout to a registry" },
	{ "sign", cmd_image_sign, "sign an image (cosign layout; ECDSA, SM2, Ed25519)" },
	{ "verify", cmd_image_verify, "check an image's signature with a public key" },
	{ "keygen", cmd_image_keygen, "write a new signing key pair" },
	LAZY_MOUNT_CMDS
	{ NULL, NULL, NULL },
};

int cmd_image(int argc, char **argv)
{
	anole_log_set_level(ANOLE_LOG_INFO);
	return anole_dispatch("image", image_cmds, argc, argv);
}
