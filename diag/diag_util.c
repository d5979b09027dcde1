// SPDX-License-Identifier: Apache-2.0
/* Small helpers the diag tools share for output (see diag.h). */
#include "diag.h"

#include "anole/error.h"
#include "anole/strbuf.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
