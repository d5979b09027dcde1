// SPDX-License-Identifier: Apache-2.0
/* Shared user-space helpers of the diag tools (see trace_helpers.h). */
#include "trace_helpers.h"

#include "anole/error.h"
#include "anole/xalloc.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ================================================================ histograms */

static int last_nonzero(const unsigned int *vals, int nvals, unsigned int *max)
{
	int last = -1;

	*max = 0;
	for (int i = 0; i < nvals; i++) {
		if (vals[i])
			last = i;
		if (vals[i] > *max)
			*max = vals[i];
	}
	return last;
}

static unsigned long long slot_low(int i) { return i ? 1ULL << i : 0; }
static unsigned long long slot_high(int i) { return i >= 63 ? ~0ULL : (1ULL << (i + 1)) - 1; }

void diag_print_log2_hist(FILE *f, const unsigned int *vals, int nvals, const char *unit)
{
	unsigned int max;
	int last = last_nonzero(vals, nvals, &max);
	/* past slot 32 the ranges need 20 digits, and the bar gets narrower */
	bool wide = last > 32;
	int numw = wide ? 20 : 10, barw = wide ? 20 : 40;

	if (last < 0)
		return;
	fprintf(f, "%*s%-*s : count    distribution\n", wide ? 15 : 5, "", wide ? 29 : 19, unit);
	for (int i = 0; i <= last; i++) {
		int stars = (int)((unsigned long long)vals[i] * barw / max);

		fprintf(f, "%*llu -> %-*llu : %-8u |", numw, slot_low(i), numw, slot_high(i), vals[i]);
		for (int s = 0; s < barw; s++)
			fputc(s < stars ? '*' : ' ', f);
		fputs("|\n", f);
	}
}

void diag_log2_hist_json(struct strbuf *sb, const unsigned int *vals, int nvals)
{
	unsigned int max;
	int last = last_nonzero(vals, nvals, &max);

	strbuf_addch(sb, '[');
	for (int i = 0; i <= last; i++)
		strbuf_addf(sb, "%s{\"low\":%llu,\"high\":%llu,\"count\":%u}", i ? "," : "",
			    slot_low(i), slot_high(i), vals[i]);
	strbuf_addch(sb, ']');
}

uint64_t diag_hist_total(const unsigned int *vals, int nvals)
{
	uint64_t t = 0;

	for (int i = 0; i < nvals; i++)
		t += vals[i];
	return t;
}

/* ================================================================ kernel symbols */

struct diag_ksyms {
	char *text; /* /proc/kallsyms, names cut in place */
	struct diag_ksym *syms;
	size_t n;
};

static int ksym_cmp(const void *a, const void *b)
{
	const struct diag_ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Read and parse /proc/kallsyms; -errno and why, nothing reported. */
static int ksyms_read(struct diag_ksyms **out, const char **why)
{
	struct strbuf sb = STRBUF_INIT;
	struct diag_ksyms *ks;
	size_t alloc = 0;
	bool nonzero = false;
	int fd = open("/proc/kallsyms", O_RDONLY | O_CLOEXEC);
	char *p;

	*out = NULL;
	*why = "cannot read /proc/kallsyms";
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t r;

		strbuf_grow(&sb, 1 << 16);
		r = read(fd, sb.buf + sb.len, sb.alloc - sb.len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			close(fd);
			strbuf_release(&sb);
			return -e;
		}
		if (r == 0)
			break;
		strbuf_setlen(&sb, sb.len + (size_t)r);
	}
	close(fd);

	ks = xcalloc(1, sizeof(*ks));
	ks->text = strbuf_detach(&sb, NULL);
	/* "ffffffff816b49b0 t do_sys_openat2" with an optional "\t[module]" */
	for (p = ks->text; *p;) {
		char *eol = strchr(p, '\n'), *name, *end, *mod = NULL;
		unsigned long addr;

		if (eol)
			*eol = '\0';
		addr = strtoul(p, &end, 16);
		if (end != p && end[0] == ' ' && end[1] && end[2] == ' ') {
			name = end + 3;
			if ((end = strchr(name, '\t'))) {
				*end = '\0';
				mod = end + 1;
				if (*mod == '[') {
					mod++;
					if ((end = strchr(mod, ']')))
						*end = '\0';
				}
			}
			xgrow(&ks->syms, &alloc, ks->n + 1, sizeof(*ks->syms));
			ks->syms[ks->n++] = (struct diag_ksym){ addr, name, mod };
			nonzero |= addr != 0;
		}
		if (!eol)
			break;
		p = eol + 1;
	}
	qsort(ks->syms, ks->n, sizeof(*ks->syms), ksym_cmp);
	if (!nonzero) {
		diag_ksyms_free(ks);
		*why = "/proc/kallsyms shows no addresses (needs CAP_SYSLOG; see kernel.kptr_restrict)";
		return -EPERM;
	}
	*out = ks;
	return 0;
}

int diag_ksyms_load(struct diag_ksyms **out)
{
	const char *why;
	int ret = ksyms_read(out, &why);

	if (ret == -EPERM)
		return anole_error_code(ret, "%s", why);
	return ret ? anole_error(-ret, "%s", why) : 0;
}

void diag_ksyms_free(struct diag_ksyms *ks)
{
	if (!ks)
		return;
	free(ks->syms);
	free(ks->text);
	free(ks);
}

const struct diag_ksym *diag_ksyms_search(const struct diag_ksyms *ks, unsigned long addr)
{
	size_t lo = 0, hi = ks->n;

	/* the last symbol at or below addr */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ks->syms[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &ks->syms[lo - 1] : NULL;
}

const struct diag_ksym *diag_ksyms_find(const struct diag_ksyms *ks, const char *name)
{
	for (size_t i = 0; i < ks->n; i++)
		if (!strcmp(ks->syms[i].name, name))
			return &ks->syms[i];
	return NULL;
}

static struct diag_ksyms *shared_ksyms;
static int shared_ksyms_err;

static void free_shared_ksyms(void) { diag_ksyms_free(shared_ksyms); }

const struct diag_ksyms *diag_ksyms_shared(void)
{
	if (!shared_ksyms && !shared_ksyms_err) {
		const char *why;

		/* a failure here only costs a precise reason: keep it quiet */
		shared_ksyms_err = ksyms_read(&shared_ksyms, &why);
		if (shared_ksyms_err)
			anole_debug("%s", why);
		else
			atexit(free_shared_ksyms);
	}
	return shared_ksyms;
}

/* ================================================================ tracefs */

static bool is_dir(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISDIR(st.st_mode);
}

const char *diag_tracefs_path(void)
{
	if (is_dir("/sys/kernel/tracing/events"))
		return "/sys/kernel/tracing";
	if (is_dir("/sys/kernel/debug/tracing/events"))
		return "/sys/kernel/debug/tracing";
	return NULL;
}

int diag_tracefs_ensure(const char **path)
{
	const char *p = diag_tracefs_path();

	if (!p) {
		if (mount("tracefs", "/sys/kernel/tracing", "tracefs",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
			return -errno;
		anole_info("mounted tracefs at /sys/kernel/tracing (classic tracepoints need it)");
		p = diag_tracefs_path();
		if (!p)
			return -ENOENT;
	}
	if (path)
		*path = p;
	return 0;
}

bool diag_tracepoint_exists(const char *cat, const char *name)
{
	const char *tfs;
	char path[512];

	if (diag_tracefs_ensure(&tfs))
		return false;
	snprintf(path, sizeof(path), "%s/events/%s/%s/id", tfs, cat, name);
	return !access(path, F_OK);
}

/* ================================================================ kernel BTF */

static struct btf *vmlinux_btf;
static int vmlinux_btf_err;

static void free_vmlinux_btf(void) { btf__free(vmlinux_btf); }

static struct btf *kernel_btf(void)
{
	if (!vmlinux_btf && !vmlinux_btf_err) {
		vmlinux_btf = btf__load_vmlinux_btf();
		if (!vmlinux_btf)
			vmlinux_btf_err = errno ? -errno : -ENOENT;
		else
			atexit(free_vmlinux_btf);
	}
	return vmlinux_btf;
}

int diag_btf_check(void)
{
	if (kernel_btf())
		return 0;
	if (access("/sys/kernel/btf/vmlinux", F_OK))
		return anole_error_code(ENOENT, "this kernel has no BTF (/sys/kernel/btf/vmlinux "
					"is missing: it was built without CONFIG_DEBUG_INFO_BTF); "
					"the CO-RE tools need it to adapt to the kernel");
	return anole_error(-vmlinux_btf_err, "cannot load the kernel BTF from /sys/kernel/btf/vmlinux");
}

bool diag_btf_available(void)
{
	return kernel_btf() != NULL;
}

bool diag_btf_has(const char *name, int kind)
{
	struct btf *btf = kernel_btf();

	return btf && btf__find_by_name_kind(btf, name, kind) > 0;
}

/* ================================================================ processes, cgroups */

int diag_pid_check(int pid)
{
	if (pid <= 0)
		return anole_error_code(EINVAL, "bad process id %d", pid);
	if (kill(pid, 0) && errno == ESRCH)
		return anole_error_code(ESRCH, "no such process: %d", pid);
	return 0;
}

int diag_cgroup_id(const char *path, uint64_t *id)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 64];
	} h;
	struct statfs sfs;
	int mount_id, fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return anole_error(errno, "cgroup %s", path);
	if (fstatfs(fd, &sfs)) {
		int e = errno;

		close(fd);
		return anole_error(e, "cgroup %s", path);
	}
	close(fd);
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return anole_error_code(EINVAL, "cgroup %s: not a cgroup v2 directory (the filter "
					"works on the unified hierarchy, e.g. /sys/fs/cgroup or "
					"/sys/fs/cgroup/unified)", path);
	h.fh.handle_bytes = sizeof(h.buf) - sizeof(struct file_handle);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0))
		return anole_error(errno, "cgroup %s: cannot get its id", path);
	if (h.fh.handle_bytes < sizeof(*id))
		return anole_error_code(EINVAL, "cgroup %s: unexpected file handle", path);
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* ================================================================ perf events */

int diag_perf_clock_open(int cpu, uint64_t rate, bool freq)
{
	struct perf_event_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_CPU_CLOCK;
	attr.freq = freq;
	if (freq)
		attr.sample_freq = rate;
	else
		attr.sample_period = rate;
	fd = syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

struct diag_perf_links {
	int n;
	struct bpf_link **links;
};

int diag_perf_attach(struct bpf_program *prog, uint64_t rate, bool freq,
		     struct diag_perf_links **out)
{
	int ncpu = libbpf_num_possible_cpus(), ret = 0;
	struct diag_perf_links *pl;

	*out = NULL;
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	pl = xcalloc(1, sizeof(*pl));
	pl->links = xcalloc((size_t)ncpu, sizeof(*pl->links));
	for (int cpu = 0; cpu < ncpu; cpu++) {
		int fd = diag_perf_clock_open(cpu, rate, freq);
		struct bpf_link *link;

		if (fd == -ENODEV) /* possible but offline */
			continue;
		if (fd < 0) {
			ret = fd;
			break;
		}
		link = bpf_program__attach_perf_event(prog, fd);
		if (!link) {
			ret = errno ? -errno : -EINVAL;
			close(fd);
			break;
		}
		/* the link owns the perf event fd from here on */
		pl->links[pl->n++] = link;
	}
	if (!ret && !pl->n)
		ret = -ENODEV;
	if (ret) {
		diag_perf_detach(pl);
		return ret;
	}
	*out = pl;
	return 0;
}

void diag_perf_detach(struct diag_perf_links *pl)
{
	if (!pl)
		return;
	for (int i = 0; i < pl->n; i++)
		bpf_link__destroy(pl->links[i]);
	free(pl->links);
	free(pl);
}
