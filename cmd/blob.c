// SPDX-License-Identifier: Apache-2.0
/* `anole blob <verb>`: read and write blob stores (docs/anole-blob.md). */
#include "anole.h"
#include "store_opts.h"
#include "anole/blobstore.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CHUNK (4u << 20)
#define MAX_CHUNK (256u << 20)
#define MAX_JOBS 64

enum { OPT_OFFSET = 256, OPT_LENGTH, OPT_JSON, OPT_CHUNK, OPT_NO_VERIFY, OPT_JOBS };

#define COMMON_LONGOPTS \
	STORE_LONGOPTS, \
	{ "verbose", no_argument, NULL, 'v' }, \
	{ "help", no_argument, NULL, 'h' }

#define COMMON_HELP \
STORE_HELP \
"  -v, --verbose          report retries and, at the end, request counts\n" \
"  -h, --help             this help\n" \
"\n" \
"STORE is a directory, http(s)://HOST/PREFIX (GET PREFIX/<hex>), or\n" \
"docker://HOST[:PORT]/REPO (an OCI registry). See docs/anole-blob.md.\n"

static int usage_error(const char *verb, const char *msg)
{
	fprintf(stderr, "anole blob %s: %s\nTry 'anole blob %s --help'.\n", verb, msg, verb);
	return 2;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	return anole_parse_size(s, out) || *out > max ? -EINVAL : 0;
}

/* -v, or a store option (store_cli_opt): 0, or 2 for a usage error (reported). */
static int common_opt(struct store_cli *c, const char *verb, int opt, const char *arg)
{
	char cmd[32];

	if (opt == 'v') {
		anole_log_set_level(anole_log_get_level() >= ANOLE_LOG_INFO ?
				    ANOLE_LOG_DEBUG : ANOLE_LOG_INFO);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "blob %s", verb);
	return store_cli_opt(c, cmd, opt, arg);
}

static int open_store(struct anole_blobstore **bs, const char *spec, struct store_cli *c)
{
	return anole_blobstore_open(bs, spec, &c->o);
}

static void report_stats(struct anole_blobstore *bs)
{
	struct anole_blobstore_stats st;

	if (!bs || anole_log_get_level() < ANOLE_LOG_INFO)
		return;
	anole_blobstore_get_stats(bs, &st);
	anole_info("blob store: %" PRIu64 " requests, %" PRIu64 " bytes read, %" PRIu64
		   " bytes sent, %" PRIu64 " retries, %" PRIu64 " failures, %" PRIu64
		   " auth exchanges", st.requests, st.bytes, st.bytes_sent, st.retries,
		   st.failures, st.auth);
}

/* ---------------------------------------------------------------- cat */

static const char cat_help[] =
"usage: anole blob cat STORE DIGEST [options]\n"
"\n"
"Write the bytes of blob DIGEST (sha256:<hex>) from STORE to standard output\n"
"or to FILE. When the whole blob is read (no --offset and no --length) its\n"
"SHA-256 is checked, and nothing is written unless it matches: the bytes are\n"
"held in a temporary file until then. A range is written as it arrives.\n"
"\n"
"options:\n"
"      --offset N         start at byte N (default 0)\n"
"      --length N         read N bytes (default: to the end of the blob)\n"
"  -o, --output FILE      write FILE (replaced atomically) instead of stdout\n"
"      --chunk-size N     bytes per range request (default 4M)\n"
"      --jobs N           up to N range requests at a time (default 1); the\n"
"                         output is then assembled in FILE or a temporary file\n"
"      --no-verify        stream the whole blob without checking its digest\n"
COMMON_HELP;

static int spool_open(void)
{
	const char *dir = getenv("TMPDIR");
	int fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		FILE *f = tmpfile();

		if (f) {
			fd = dup(fileno(f));
			fclose(f);
		}
	}
	return fd < 0 ? anole_error(errno, "cannot create a temporary file") : fd;
}

static int copy_to_stdout(int fd, uint64_t len)
{
	uint8_t *buf = xmalloc(1u << 20);
	uint64_t off = 0;
	int ret = 0;

	while (!ret && off < len) {
		size_t n = len - off < (1u << 20) ? (size_t)(len - off) : (1u << 20);

		ret = pread_full(fd, buf, n, off);
		if (ret)
			ret = anole_error(-ret, "cannot read the temporary file");
		else if ((ret = write_full(STDOUT_FILENO, buf, n)))
			ret = anole_error(-ret, "cannot write to standard output");
		off += n;
	}
	free(buf);
	return ret;
}

struct par_read {
	struct anole_blobstore *bs;
	const char *digest;
	uint64_t offset, length, chunk;
	int fd;
	atomic_uint_fast64_t next;
	atomic_int err;
};

static void *par_worker(void *arg)
{
	struct par_read *p = arg;
	uint8_t *buf = xmalloc((size_t)p->chunk);

	while (!atomic_load(&p->err)) {
		uint64_t pos = atomic_fetch_add(&p->next, 1) * p->chunk;
		size_t n;
		int ret, none = 0;

		if (pos >= p->length)
			break;
		n = p->length - pos < p->chunk ? (size_t)(p->length - pos) : (size_t)p->chunk;
		ret = anole_blobstore_read(p->bs, p->digest, p->offset + pos, buf, n);
		if (!ret && (ret = pwrite_full(p->fd, buf, n, pos)))
			ret = anole_error(-ret, "cannot write the output");
		if (ret) {
			atomic_compare_exchange_strong(&p->err, &none, ret);
			break;
		}
	}
	free(buf);
	return NULL;
}

/* Read [offset, offset+length) with `jobs` threads into fd at 0..length. */
static int read_parallel(struct anole_blobstore *bs, const char *digest, uint64_t offset,
			 uint64_t length, uint64_t chunk, unsigned jobs, int fd)
{
	struct par_read p = { .bs = bs, .digest = digest, .offset = offset, .length = length,
			      .chunk = chunk, .fd = fd };
	pthread_t tids[MAX_JOBS];
	unsigned started = 0;

	atomic_init(&p.next, 0);
	atomic_init(&p.err, 0);
	for (; started < jobs; started++) {
		if (pthread_create(&tids[started], NULL, par_worker, &p)) {
			if (!started)
				return anole_error(EAGAIN, "cannot start a thread");
			break;
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	return atomic_load(&p.err);
}

static int blob_cat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "offset", required_argument, NULL, OPT_OFFSET },
		{ "length", required_argument, NULL, OPT_LENGTH },
		{ "output", required_argument, NULL, 'o' },
		{ "chunk-size", required_argument, NULL, OPT_CHUNK },
		{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
		{ "jobs", required_argument, NULL, OPT_JOBS },
		COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct store_cli c = { 0 };
	struct anole_blobstore *bs = NULL;
	struct anole_digest_ctx *ctx = NULL;
	struct anole_output out = { .fd = -1 };
	unsigned long long offset = 0, length = 0, chunk = DEFAULT_CHUNK, jobs = 1;
	bool have_length = false, verify = true, have_output = false, parallel;
	const char *output = NULL, *store, *digest;
	uint8_t *buf = NULL;
	int opt, ret, fd = STDOUT_FILENO, spool = -1;
	uint64_t done = 0;

	while ((opt = getopt_long(argc, argv, "o:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_OFFSET:
			if (anole_parse_size(optarg, &offset))
				return usage_error("cat", "--offset takes a number of bytes");
			break;
		case OPT_LENGTH:
			if (anole_parse_size(optarg, &length))
				return usage_error("cat", "--length takes a number of bytes");
			have_length = true;
			break;
		case 'o': output = optarg; have_output = true; break;
		case OPT_CHUNK:
			if (anole_parse_size(optarg, &chunk) || !chunk || chunk > MAX_CHUNK)
				return usage_error("cat", "--chunk-size takes 1 byte to 256M");
			break;
		case OPT_NO_VERIFY: verify = false; break;
		case OPT_JOBS:
			if (parse_uint(optarg, MAX_JOBS, &jobs) || !jobs)
				return usage_error("cat", "--jobs takes 1 to 64");
			break;
		case 'h': fputs(cat_help, stdout); store_cli_release(&c); return 0;
		default:
			if ((ret = common_opt(&c, "cat", opt, optarg))) {
				store_cli_release(&c);
				return ret;
			}
		}
	}
	if (optind + 2 != argc) {
		store_cli_release(&c);
		return usage_error("cat", "takes STORE and DIGEST");
	}
	store = argv[optind];
	digest = argv[optind + 1];
	if (anole_digest_ref_check(digest)) {
		store_cli_release(&c);
		return usage_error("cat", "DIGEST must be sha256:<64 lower-case hex digits>");
	}
	verify = verify && offset == 0 && !have_length;

	ret = open_store(&bs, store, &c);
	if (ret)
		goto out;
	if (!have_length) {
		uint64_t size;

		ret = anole_blobstore_size(bs, digest, &size);
		if (ret)
			goto out;
		if (offset > size) {
			ret = anole_error_code(ERANGE, "--offset %llu is beyond the end of %s "
					       "(%" PRIu64 " bytes)", offset, digest, size);
			goto out;
		}
		length = size - offset;
	}
	parallel = jobs > 1 && length > chunk;
	if (have_output) {
		ret = anole_output_open(&out, output);
		if (ret)
			goto out;
		fd = out.fd;
	} else if (verify || parallel) {
		/* held back until verified, or assembled out of order */
		spool = spool_open();
		if (spool < 0) {
			ret = spool;
			goto out;
		}
		fd = spool;
	}
	if (parallel) {
		ret = read_parallel(bs, digest, offset, length, chunk, (unsigned)jobs, fd);
		if (ret)
			goto out;
	} else {
		if (verify && !(ctx = anole_digest_new(ANOLE_DIGEST_SHA256))) {
			ret = anole_error_code(ENOMEM, "cannot start a digest");
			goto out;
		}
		buf = xmalloc(length < chunk ? (size_t)(length ? length : 1) : (size_t)chunk);
		while (done < length) {
			size_t n = length - done < chunk ? (size_t)(length - done) : (size_t)chunk;

			ret = anole_blobstore_read(bs, digest, offset + done, buf, n);
			if (ret)
				goto out;
			if (ctx)
				anole_digest_update(ctx, buf, n);
			ret = write_full(fd, buf, n);
			if (ret) {
				ret = anole_error(-ret, "cannot write %s",
						  have_output ? out.tmp_path : "to standard output");
				goto out;
			}
			done += n;
		}
	}
	if (verify) {
		uint8_t md[ANOLE_DIGEST_MAX];
		char hex[65];

		ret = ctx ? anole_digest_final(ctx, md) :
			    anole_digest_file(fd, length, ANOLE_DIGEST_SHA256, md);
		if (ret) {
			ret = anole_error(-ret, "cannot compute the digest of what was read");
			goto out;
		}
		anole_hex(md, 32, hex);
		if (strcmp(hex, digest + 7)) {
			ret = anole_error_code(EBADMSG, "%s from %s: digest mismatch, the bytes read "
					       "have sha256:%s; nothing written", digest, store, hex);
			goto out;
		}
	}
	if (spool >= 0)
		ret = copy_to_stdout(spool, length);
	else if (have_output)
		ret = anole_output_commit(&out);
	out.fd = -1;
out:
	if (have_output && out.fd >= 0)
		anole_output_abort(&out);
	if (spool >= 0)
		close(spool);
	report_stats(bs);
	anole_digest_free(ctx);
	anole_blobstore_close(bs);
	free(buf);
	store_cli_release(&c);
	return ret ? 1 : 0;
}

/* ---------------------------------------------------------------- size */

static const char size_help[] =
"usage: anole blob size STORE DIGEST [options]\n"
"\n"
"Print the size in bytes of blob DIGEST in STORE (HEAD for HTTP stores).\n"
"\n"
"options:\n"
"      --json             print {\"store\", \"digest\", \"size\"} as JSON\n"
COMMON_HELP;

static int blob_size(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct store_cli c = { 0 };
	struct anole_blobstore *bs = NULL;
	bool json = false;
	uint64_t size = 0;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: json = true; break;
		case 'h': fputs(size_help, stdout); store_cli_release(&c); return 0;
		default:
			if ((ret = common_opt(&c, "size", opt, optarg))) {
				store_cli_release(&c);
				return ret;
			}
		}
	}
	if (optind + 2 != argc) {
		store_cli_release(&c);
		return usage_error("size", "takes STORE and DIGEST");
	}
	if (anole_digest_ref_check(argv[optind + 1])) {
		store_cli_release(&c);
		return usage_error("size", "DIGEST must be sha256:<64 lower-case hex digits>");
	}
	ret = open_store(&bs, argv[optind], &c);
	if (!ret)
		ret = anole_blobstore_size(bs, argv[optind + 1], &size);
	if (!ret && json) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_addstr(&sb, "{\"store\":");
		strbuf_add_json_string(&sb, argv[optind], strlen(argv[optind]));
		strbuf_addf(&sb, ",\"digest\":\"%s\",\"size\":%" PRIu64 "}\n", argv[optind + 1], size);
		fputs(sb.buf, stdout);
		strbuf_release(&sb);
	} else if (!ret) {
		printf("%" PRIu64 "\n", size);
	}
	report_stats(bs);
	anole_blobstore_close(bs);
	store_cli_release(&c);
	return ret ? 1 : 0;
}

/* ---------------------------------------------------------------- push */

static const char push_help[] =
"usage: anole blob push STORE FILE [options]\n"
"\n"
"Store FILE as a blob named by its SHA-256 and print that digest. A registry\n"
"gets a monolithic upload (skipped when it already has the blob); a directory\n"
"gets a copy renamed into place. http(s) stores are read-only.\n"
"\n"
"options:\n"
"      --json             print {\"store\", \"digest\", \"size\", \"uploaded\"} as JSON\n"
COMMON_HELP;

static int blob_push(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		COMMON_LONGOPTS,
		{ NULL, 0, NULL, 0 },
	};
	struct store_cli c = { 0 };
	struct anole_blobstore *bs = NULL;
	uint8_t md[ANOLE_DIGEST_MAX];
	char digest[80], hex[65];
	const char *file;
	bool json = false;
	struct stat st;
	int opt, ret, fd;

	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: json = true; break;
		case 'h': fputs(push_help, stdout); store_cli_release(&c); return 0;
		default:
			if ((ret = common_opt(&c, "push", opt, optarg))) {
				store_cli_release(&c);
				return ret;
			}
		}
	}
	if (optind + 2 != argc) {
		store_cli_release(&c);
		return usage_error("push", "takes STORE and FILE");
	}
	file = argv[optind + 1];
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		anole_error(errno, "cannot open %s", file);
		store_cli_release(&c);
		return 1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		anole_error_code(EINVAL, "%s is not a regular file", file);
		close(fd);
		store_cli_release(&c);
		return 1;
	}
	ret = anole_digest_file(fd, (uint64_t)st.st_size, ANOLE_DIGEST_SHA256, md);
	close(fd);
	if (ret) {
		anole_error(-ret, "cannot read %s", file);
		store_cli_release(&c);
		return 1;
	}
	anole_hex(md, 32, hex);
	snprintf(digest, sizeof(digest), "sha256:%s", hex);

	ret = open_store(&bs, argv[optind], &c);
	if (!ret)
		ret = anole_blobstore_put(bs, digest, file);
	if (ret >= 0 && json) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_addstr(&sb, "{\"store\":");
		strbuf_add_json_string(&sb, argv[optind], strlen(argv[optind]));
		strbuf_addf(&sb, ",\"digest\":\"%s\",\"size\":%llu,\"uploaded\":%s}\n", digest,
			    (unsigned long long)st.st_size, ret == 0 ? "true" : "false");
		fputs(sb.buf, stdout);
		strbuf_release(&sb);
	} else if (ret >= 0) {
		printf("%s\n", digest);
	}
	report_stats(bs);
	anole_blobstore_close(bs);
	store_cli_release(&c);
	return ret < 0 ? 1 : 0;
}

static const struct anole_cmd blob_cmds[] = {
	{ "cat", blob_cat, "write a blob, or a byte range of it" },
	{ "size", blob_size, "print the size of a blob" },
	{ "push", blob_push, "store a file as a blob named by its digest" },
	{ NULL, NULL, NULL },
};

int cmd_blob(int argc, char **argv)
{
	/* libcurl runs without signals: a peer closing a connection must not
	 * kill us, and a closed stdout is reported as EPIPE */
	signal(SIGPIPE, SIG_IGN);
	return anole_dispatch("blob", blob_cmds, argc, argv);
}
