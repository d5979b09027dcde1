// SPDX-License-Identifier: Apache-2.0
/* Small helpers the diag tools share for output (see diag.h). */
#include "diag.h"

#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double diag_ktime_to_real(const struct diag_opts *o, uint64_t ns)
{
	return (double)ns / 1e9 + o->mono_to_real;
}

void diag_print_time(FILE *f)
{
	time_t t = time(NULL);
	struct tm tm;
	char buf[16];

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
	fprintf(f, "%-8s\n", buf);
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

uint32_t *diag_map_keys_u32(int map_fd, size_t max, size_t *n)
{
	uint32_t *keys = NULL, key, *prev = NULL;
	size_t alloc = 0;

	*n = 0;
	while (*n < max && !bpf_map_get_next_key(map_fd, prev, &key)) {
		xgrow(&keys, &alloc, *n + 1, sizeof(*keys));
		keys[*n] = key;
		prev = &keys[(*n)++];
	}
	if (*n)
		qsort(keys, *n, sizeof(*keys), u32_cmp);
	return keys;
}

int diag_percpu_hist_take(int map_fd, uint32_t key, struct diag_hist *out)
{
	return diag_percpu_hist_take_sized(map_fd, key, sizeof(struct diag_hist), out);
}

int diag_percpu_hist_take_sized(int map_fd, uint32_t key, size_t value_size,
				struct diag_hist *out)
{
	/* the kernel hands per-CPU values out 8-byte aligned, one per possible CPU */
	size_t stride = (value_size + 7) & ~(size_t)7;
	int ncpu = libbpf_num_possible_cpus();
	char *vals;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, stride);
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map_fd, &key, vals)) {
		ret = -errno;
		goto out;
	}
	for (int c = 0; c < ncpu; c++) {
		const struct diag_hist *h = (const struct diag_hist *)(vals + (size_t)c * stride);

		for (int i = 0; i < DIAG_HIST_SLOTS; i++)
			out->slots[i] += h->slots[i];
	}
	memset(vals, 0, (size_t)ncpu * stride);
	if (bpf_map_update_elem(map_fd, &key, vals, BPF_ANY))
		ret = -errno;
out:
	free(vals);
	return ret;
}

void diag_json_bytes(struct strbuf *sb, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	strbuf_addch(sb, '"');
	for (size_t i = 0; i < n;) {
		size_t len = anole_utf8_len(p + i, n - i);

		if (len > 1) {
			strbuf_add(sb, s + i, len);
			i += len;
		} else if (!len) {
			/* not UTF-8: the byte as a Latin-1 code point keeps the JSON valid */
			strbuf_addf(sb, "\\u%04x", p[i++]);
		} else {
			struct strbuf one = STRBUF_INIT;

			strbuf_add_json_string(&one, s + i, 1);
			strbuf_add(sb, one.buf + 1, one.len - 2);
			strbuf_release(&one);
			i++;
		}
	}
	strbuf_addch(sb, '"');
}

void diag_json_str(struct strbuf *sb, const char *s, size_t n)
{
	diag_json_bytes(sb, s, strnlen(s, n));
}

void diag_text_bytes(struct strbuf *sb, const char *s, size_t n)
{
	strbuf_add_escaped_text(sb, s, n, false);
}

void diag_emit_line(struct strbuf *sb)
{
	strbuf_addch(sb, '\n');
	fwrite(sb->buf, 1, sb->len, stdout);
}

const char *diag_tcp_state_name(int state)
{
	static const char *const names[] = {
		[1] = "ESTABLISHED", [2] = "SYN_SENT", [3] = "SYN_RECV", [4] = "FIN_WAIT1",
		[5] = "FIN_WAIT2", [6] = "TIME_WAIT", [7] = "CLOSE", [8] = "CLOSE_WAIT",
		[9] = "LAST_ACK", [10] = "LISTEN", [11] = "CLOSING", [12] = "NEW_SYN_RECV",
		[13] = "BOUND_INACTIVE",
	};

	if (state > 0 && (size_t)state < sizeof(names) / sizeof(names[0]) && names[state])
		return names[state];
	return "UNKNOWN";
}

void diag_inet_addr(char *buf, size_t len, int family, const uint8_t *addr)
{
	if (!inet_ntop(family == 10 ? AF_INET6 : AF_INET, addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

int diag_open_events(struct ring_buffer **rb, int map_fd,
		     int (*fn)(void *ctx, void *data, size_t size),
		     const struct diag_opts *o, const char *header_fmt, ...)
{
	va_list ap;

	*rb = ring_buffer__new(map_fd, fn, (void *)o, NULL);
	if (!*rb)
		return errno ? -errno : -ENOMEM;
	if (!o->json) {
		if (o->timestamp)
			printf("%-8s ", "TIME");
		va_start(ap, header_fmt);
		vprintf(header_fmt, ap);
		va_end(ap);
	}
	fflush(stdout);
	return 0;
}

void diag_warn_dropped(const char *tool, unsigned long long dropped)
{
	if (dropped)
		anole_warn("%s: %llu events lost (output too slow)", tool, dropped);
}

void diag_add_event_time(struct strbuf *sb, const struct diag_opts *o, uint64_t ns)
{
	time_t t = (time_t)diag_ktime_to_real(o, ns);
	struct tm tm;
	char buf[16];

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
	strbuf_addf(sb, "%-8s ", buf);
}

/* The line of /proc/TID/FILE starting with PREFIX, without it; false if none. */
static bool proc_line(uint32_t tid, const char *file, const char *prefix, char *out, size_t n)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/%s", tid, file);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, prefix, strlen(prefix))) {
			snprintf(out, n, "%s", line + strlen(prefix));
			out[strcspn(out, "\n")] = '\0';
			found = true;
		}
	fclose(f);
	return found;
}

/* Where the cgroup v2 hierarchy is mounted, "" if nowhere. */
static void cgroup2_mount(char *out, size_t n)
{
	char line[4096];
	FILE *f = fopen("/proc/self/mountinfo", "re");

	out[0] = '\0';
	if (!f)
		return;
	/* "36 25 0:31 / /sys/fs/cgroup rw,... shared:9 - cgroup2 cgroup2 rw" */
	while (!out[0] && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - "), *save = NULL, *tok;
		int field = 0;

		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
			if (++field == 5) {
				snprintf(out, n, "%s", tok);
				break;
			}
	}
	fclose(f);
}

static bool cgroup_dir_id(const char *path, uint64_t *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 64];
	} h;
	int mount_id;

	h.fh.handle_bytes = sizeof(h.buf) - sizeof(struct file_handle);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) ||
	    h.fh.handle_bytes < sizeof(*id))
		return false;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return true;
}

bool diag_thread_wanted(const struct diag_opts *o, uint32_t tid, uint32_t *tgid)
{
	char buf[4096], dir[8192];
	size_t root_len;

	*tgid = 0;
	if (proc_line(tid, "status", "Tgid:", buf, sizeof(buf)))
		*tgid = (uint32_t)strtoul(buf, NULL, 10);
	if (!o->filter.tgid && !o->filter.cgroup_id)
		return true;
	if (!*tgid || (o->filter.tgid && *tgid != o->filter.tgid))
		return false;
	if (!o->filter.cgroup_id)
		return true;
	/* its cgroup v2 and the ones above it, up to the root */
	if (!proc_line(tid, "cgroup", "0::", buf, sizeof(buf)))
		return false;
	cgroup2_mount(dir, sizeof(dir));
	root_len = strlen(dir);
	if (!root_len || root_len + strlen(buf) >= sizeof(dir))
		return false;
	strcat(dir, buf);
	for (;;) {
		uint64_t id;
		char *slash;

		if (cgroup_dir_id(dir, &id) && id == o->filter.cgroup_id)
			return true;
		slash = strrchr(dir, '/');
		if (!slash || (size_t)(slash - dir) < root_len)
			return false;
		*slash = '\0';
		if (strlen(dir) < root_len)
			return false;
	}
}

int diag_stack_read(int map_fd, int32_t id, uint64_t *ips, int max)
{
	int n = 0;

	if (id < 0 || bpf_map_lookup_elem(map_fd, &id, ips))
		return 0;
	while (n < max && ips[n])
		n++;
	return n;
}

const char *diag_kframe_name(uint64_t ip, char *buf, size_t len)
{
	const struct diag_ksyms *ks = diag_ksyms_shared();
	const struct diag_ksym *sym = ks ? diag_ksyms_search(ks, (unsigned long)ip) : NULL;

	if (sym)
		return sym->name;
	snprintf(buf, len, "0x%llx", (unsigned long long)ip);
	return buf;
}

#define KDEV(ma, mi) ((__u32)(ma) << 20 | (__u32)(mi))

/* "MAJ:MIN" of /sys/class/block/NAME/dev, as the kernel's dev_t */
static int read_dev(const char *dir, __u32 *dev)
{
	char path[PATH_MAX], buf[32];
	unsigned ma, mi;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/dev", dir);
	if (!(f = fopen(path, "re")))
		return -errno;
	ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%u:%u", &ma, &mi) == 2;
	fclose(f);
	if (!ok)
		return -EINVAL;
	*dev = KDEV(ma, mi);
	return 0;
}

int diag_disk_resolve(const char *tool, const char *name, __u32 *dev)
{
	char path[PATH_MAX], real[PATH_MAX];
	const char *base = strncmp(name, "/dev/", 5) ? name : name + 5;

	if (!*base || strchr(base, '/'))
		return anole_error_code(EINVAL, "%s: bad disk name '%s'", tool, name);
	snprintf(path, sizeof(path), "/sys/class/block/%s", base);
	if (!realpath(path, real))
		return anole_error_code(ENOENT, "%s: no such disk: %s", tool, name);
	if ((size_t)snprintf(path, sizeof(path), "%.*s/partition", PATH_MAX - 16, real) >= sizeof(path))
		return anole_error_code(ENAMETOOLONG, "%s: bad disk name '%s'", tool, name);
	if (!access(path, F_OK)) /* block I/O is issued to the whole disk */
		*strrchr(real, '/') = '\0';
	if (read_dev(real, dev))
		return anole_error_code(ENOENT, "%s: cannot read the device number of %s", tool,
					name);
	return 0;
}

void diag_disk_name(__u32 dev, char *out, size_t n)
{
	DIR *d = opendir("/sys/class/block");
	struct dirent *de;

	snprintf(out, n, "%u:%u", dev >> 20, dev & ((1u << 20) - 1));
	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		__u32 v;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/block/%s", de->d_name);
		if (!read_dev(path, &v) && v == dev) {
			snprintf(out, n, "%.*s", (int)(n - 1), de->d_name);
			break;
		}
	}
	closedir(d);
}
