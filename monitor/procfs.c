// SPDX-License-Identifier: Apache-2.0
/*
 * System and cgroup counters for `anole monitor`: /proc/stat, meminfo,
 * diskstats, net/dev, loadavg, pressure/{cpu,memory,io,irq}, and per cgroup the files that
 * exist: cgroup v2 cpu.stat, memory.current/max, io.stat, *.pressure, and
 * on hybrid layouts the v1 memory and cpuacct hierarchies. Units are
 * converted to seconds and bytes. A family's samples must be contiguous,
 * so each family collects its samples in its own buffer (reused from one
 * sample to the next) and is written out after everything was read.
 */
#include "monitor.h"
#include "anole/fileio.h"

#include "anole/error.h"
#include "anole/metrics.h"
#include "anole/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEVICES 1024 /* disks and network interfaces, each */

enum fam {
	F_CPU, F_SYS_CPU, F_CTXT, F_INTR, F_FORKS, F_PROCS_RUNNING, F_PROCS_BLOCKED, F_BOOT,
	F_MEM, F_HUGEPAGES,
	F_DISK_READS, F_DISK_READS_MERGED, F_DISK_READ_BYTES, F_DISK_READ_TIME,
	F_DISK_WRITES, F_DISK_WRITES_MERGED, F_DISK_WRITTEN_BYTES, F_DISK_WRITE_TIME,
	F_DISK_IO_NOW, F_DISK_IO_TIME, F_DISK_IO_WEIGHTED,
	F_NET_RX_BYTES, F_NET_RX_PACKETS, F_NET_RX_ERRS, F_NET_RX_DROP,
	F_NET_TX_BYTES, F_NET_TX_PACKETS, F_NET_TX_ERRS, F_NET_TX_DROP,
	F_LOAD1, F_LOAD5, F_LOAD15, F_THREADS,
	F_PSI_TOTAL, F_PSI_AVG,
	F_CG_CPU, F_CG_CPU_USER, F_CG_CPU_SYSTEM, F_CG_THROTTLED_PERIODS, F_CG_THROTTLED,
	F_CG_MEM, F_CG_MEM_LIMIT,
	F_CG_IO_READ_BYTES, F_CG_IO_WRITE_BYTES, F_CG_IO_READS, F_CG_IO_WRITES,
	F_CG_PSI,
	F_CG_EXPORTED, F_CG_TRUNCATED,
	F_COUNT
};

static const struct {
	const char *name, *type, *help;
} fams[F_COUNT] = {
	[F_CPU] = { "anole_cpu_seconds_total", "counter", "Time each CPU spent in each mode (/proc/stat)." },
	[F_SYS_CPU] = { "anole_system_cpu_seconds_total", "counter", "Time all CPUs together spent in each mode (/proc/stat)." },
	[F_CTXT] = { "anole_context_switches_total", "counter", "Context switches." },
	[F_INTR] = { "anole_interrupts_total", "counter", "Interrupts serviced." },
	[F_FORKS] = { "anole_forks_total", "counter", "Processes and threads created." },
	[F_PROCS_RUNNING] = { "anole_procs_running", "gauge", "Threads runnable now." },
	[F_PROCS_BLOCKED] = { "anole_procs_blocked", "gauge", "Threads blocked on I/O now." },
	[F_BOOT] = { "anole_boot_time_seconds", "gauge", "Boot time, seconds since the epoch." },
	[F_MEM] = { "anole_memory_bytes", "gauge", "Memory, by /proc/meminfo field." },
	[F_HUGEPAGES] = { "anole_memory_hugepages", "gauge", "Huge page counts, by /proc/meminfo field." },
	[F_DISK_READS] = { "anole_disk_reads_completed_total", "counter", "Reads completed." },
	[F_DISK_READS_MERGED] = { "anole_disk_reads_merged_total", "counter", "Reads merged before issue." },
	[F_DISK_READ_BYTES] = { "anole_disk_read_bytes_total", "counter", "Bytes read." },
	[F_DISK_READ_TIME] = { "anole_disk_read_time_seconds_total", "counter", "Time spent on reads." },
	[F_DISK_WRITES] = { "anole_disk_writes_completed_total", "counter", "Writes completed." },
	[F_DISK_WRITES_MERGED] = { "anole_disk_writes_merged_total", "counter", "Writes merged before issue." },
	[F_DISK_WRITTEN_BYTES] = { "anole_disk_written_bytes_total", "counter", "Bytes written." },
	[F_DISK_WRITE_TIME] = { "anole_disk_write_time_seconds_total", "counter", "Time spent on writes." },
	[F_DISK_IO_NOW] = { "anole_disk_io_now", "gauge", "I/Os in progress." },
	[F_DISK_IO_TIME] = { "anole_disk_io_time_seconds_total", "counter", "Time the device had I/O in progress." },
	[F_DISK_IO_WEIGHTED] = { "anole_disk_io_time_weighted_seconds_total", "counter", "I/O time weighted by I/Os in progress." },
	[F_NET_RX_BYTES] = { "anole_network_receive_bytes_total", "counter", "Bytes received." },
	[F_NET_RX_PACKETS] = { "anole_network_receive_packets_total", "counter", "Packets received." },
	[F_NET_RX_ERRS] = { "anole_network_receive_errors_total", "counter", "Receive errors." },
	[F_NET_RX_DROP] = { "anole_network_receive_drop_total", "counter", "Received packets dropped." },
	[F_NET_TX_BYTES] = { "anole_network_transmit_bytes_total", "counter", "Bytes transmitted." },
	[F_NET_TX_PACKETS] = { "anole_network_transmit_packets_total", "counter", "Packets transmitted." },
	[F_NET_TX_ERRS] = { "anole_network_transmit_errors_total", "counter", "Transmit errors." },
	[F_NET_TX_DROP] = { "anole_network_transmit_drop_total", "counter", "Transmitted packets dropped." },
	[F_LOAD1] = { "anole_load1", "gauge", "Load average over 1 minute." },
	[F_LOAD5] = { "anole_load5", "gauge", "Load average over 5 minutes." },
	[F_LOAD15] = { "anole_load15", "gauge", "Load average over 15 minutes." },
	[F_THREADS] = { "anole_threads", "gauge", "Threads that exist (/proc/loadavg)." },
	[F_PSI_TOTAL] = { "anole_pressure_stalled_seconds_total", "counter", "Time some or all non-idle tasks were stalled on the resource (PSI)." },
	[F_PSI_AVG] = { "anole_pressure_ratio", "gauge", "Share of time stalled on the resource, averaged over the window (PSI)." },
	[F_CG_CPU] = { "anole_cgroup_cpu_usage_seconds_total", "counter", "CPU time used by the cgroup's tasks (v2 cpu.stat, v1 cpuacct.usage)." },
	[F_CG_CPU_USER] = { "anole_cgroup_cpu_user_seconds_total", "counter", "User CPU time of the cgroup's tasks." },
	[F_CG_CPU_SYSTEM] = { "anole_cgroup_cpu_system_seconds_total", "counter", "System CPU time of the cgroup's tasks." },
	[F_CG_THROTTLED_PERIODS] = { "anole_cgroup_cpu_throttled_periods_total", "counter", "Enforcement periods in which the cgroup was throttled." },
	[F_CG_THROTTLED] = { "anole_cgroup_cpu_throttled_seconds_total", "counter", "Time the cgroup was throttled." },
	[F_CG_MEM] = { "anole_cgroup_memory_usage_bytes", "gauge", "Memory charged to the cgroup (v2 memory.current, v1 memory.usage_in_bytes)." },
	[F_CG_MEM_LIMIT] = { "anole_cgroup_memory_limit_bytes", "gauge", "The cgroup's memory limit, when it has one." },
	[F_CG_IO_READ_BYTES] = { "anole_cgroup_io_read_bytes_total", "counter", "Bytes read by the cgroup, per device (io.stat)." },
	[F_CG_IO_WRITE_BYTES] = { "anole_cgroup_io_written_bytes_total", "counter", "Bytes written by the cgroup, per device (io.stat)." },
	[F_CG_IO_READS] = { "anole_cgroup_io_reads_total", "counter", "Read I/Os of the cgroup, per device (io.stat)." },
	[F_CG_IO_WRITES] = { "anole_cgroup_io_writes_total", "counter", "Write I/Os of the cgroup, per device (io.stat)." },
	[F_CG_PSI] = { "anole_cgroup_pressure_stalled_seconds_total", "counter", "Time some or all of the cgroup's tasks were stalled on the resource (PSI)." },
	[F_CG_EXPORTED] = { "anole_monitor_cgroups", "gauge", "Cgroups exported, per hierarchy." },
	[F_CG_TRUNCATED] = { "anole_monitor_cgroups_truncated", "gauge", "1 when --max-cgroups left cgroups of the hierarchy out." },
};

enum hier { H_V2, H_V1_MEMORY, H_V1_CPUACCT, H_COUNT };
static const char *const hier_names[H_COUNT] = { "v2", "v1", "v1" };

struct monitor_procfs {
	struct strbuf fam[F_COUNT];
	struct strbuf file, labels, path;
	char *root[H_COUNT];  /* hierarchy roots, NULL when absent */
	unsigned max_cgroups;
	long clk_tck;
};

static int read_file(const char *path, struct strbuf *sb)
{
	strbuf_reset(sb);
	return anole_read_file(path, SIZE_MAX, sb);
}

static void put_u64(struct monitor_procfs *p, enum fam f, const char *labels, uint64_t v)
{
	anole_metrics_u64(&p->fam[f], fams[f].name, labels, v);
}

static void put_double(struct monitor_procfs *p, enum fam f, const char *labels, double v)
{
	anole_metrics_double(&p->fam[f], fams[f].name, labels, v);
}

/* Labels from (name, value) pairs, NULL-ended; valid until the next call. */
static const char *labels(struct monitor_procfs *p, ...)
{
	va_list ap;
	const char *k;

	strbuf_reset(&p->labels);
	strbuf_addstr(&p->labels, "");
	va_start(ap, p);
	while ((k = va_arg(ap, const char *)))
		anole_metrics_label(&p->labels, k, va_arg(ap, const char *));
	va_end(ap);
	return p->labels.buf;
}

/* ---------------------------------------------------------------- /proc */

static void sample_stat(struct monitor_procfs *p)
{
	static const char *const modes[] = { "user", "nice", "system", "idle", "iowait",
					     "irq", "softirq", "steal" };
	double tick = 1.0 / (double)p->clk_tck;
	char *save = NULL;

	if (read_file("/proc/stat", &p->file))
		return;
	for (char *line = strtok_r(p->file.buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long v[8] = { 0 }, x;
		char name[32];

		if (!strncmp(line, "cpu", 3)) {
			/* guest time is already in user and nice: not added again */
			if (sscanf(line, "%31s %llu %llu %llu %llu %llu %llu %llu %llu", name, &v[0],
				   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 5)
				continue;
			for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
				if (name[3])
					put_double(p, F_CPU, labels(p, "cpu", name + 3, "mode",
								    modes[m], NULL),
						   (double)v[m] * tick);
				else
					put_double(p, F_SYS_CPU, labels(p, "mode", modes[m], NULL),
						   (double)v[m] * tick);
			}
		} else if (sscanf(line, "ctxt %llu", &x) == 1) {
			put_u64(p, F_CTXT, "", x);
		} else if (sscanf(line, "intr %llu", &x) == 1) {
			put_u64(p, F_INTR, "", x);
		} else if (sscanf(line, "processes %llu", &x) == 1) {
			put_u64(p, F_FORKS, "", x);
		} else if (sscanf(line, "procs_running %llu", &x) == 1) {
			put_u64(p, F_PROCS_RUNNING, "", x);
		} else if (sscanf(line, "procs_blocked %llu", &x) == 1) {
			put_u64(p, F_PROCS_BLOCKED, "", x);
		} else if (sscanf(line, "btime %llu", &x) == 1) {
			put_u64(p, F_BOOT, "", x);
		}
	}
}

static void sample_meminfo(struct monitor_procfs *p)
{
	char *save = NULL;

	if (read_file("/proc/meminfo", &p->file))
		return;
	for (char *line = strtok_r(p->file.buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char field[64], unit[8] = "";
		unsigned long long v;
		int n = sscanf(line, "%63[^:]: %llu %7s", field, &v, unit);

		if (n < 2)
			continue;
		if (n == 3 && !strcmp(unit, "kB"))
			put_u64(p, F_MEM, labels(p, "field", field, NULL), v * 1024);
		else
			put_u64(p, F_HUGEPAGES, labels(p, "field", field, NULL), v);
	}
}

static void sample_diskstats(struct monitor_procfs *p)
{
	char *save = NULL;
	unsigned n = 0;

	if (read_file("/proc/diskstats", &p->file))
		return;
	for (char *line = strtok_r(p->file.buf, "\n", &save); line && n < MAX_DEVICES;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long v[11] = { 0 }, any = 0;
		unsigned ma, mi;
		char dev[64];
		const char *l;

		if (sscanf(line, "%u %u %63s %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &ma, &mi, dev, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
			   &v[8], &v[9], &v[10]) != 14)
			continue;
		for (int i = 0; i < 11; i++)
			any |= v[i];
		if (!any) /* never used (unattached loop devices...): no series */
			continue;
		n++;
		l = labels(p, "device", dev, NULL);
		/* sectors are 512 bytes whatever the device's block size */
		put_u64(p, F_DISK_READS, l, v[0]);
		put_u64(p, F_DISK_READS_MERGED, l, v[1]);
		put_u64(p, F_DISK_READ_BYTES, l, v[2] * 512);
		put_double(p, F_DISK_READ_TIME, l, (double)v[3] / 1e3);
		put_u64(p, F_DISK_WRITES, l, v[4]);
		put_u64(p, F_DISK_WRITES_MERGED, l, v[5]);
		put_u64(p, F_DISK_WRITTEN_BYTES, l, v[6] * 512);
		put_double(p, F_DISK_WRITE_TIME, l, (double)v[7] / 1e3);
		put_u64(p, F_DISK_IO_NOW, l, v[8]);
		put_double(p, F_DISK_IO_TIME, l, (double)v[9] / 1e3);
		put_double(p, F_DISK_IO_WEIGHTED, l, (double)v[10] / 1e3);
	}
}

static void sample_netdev(struct monitor_procfs *p)
{
	static const enum fam f[16] = {
		[0] = F_NET_RX_BYTES, [1] = F_NET_RX_PACKETS, [2] = F_NET_RX_ERRS, [3] = F_NET_RX_DROP,
		[8] = F_NET_TX_BYTES, [9] = F_NET_TX_PACKETS, [10] = F_NET_TX_ERRS, [11] = F_NET_TX_DROP,
	};
	char *save = NULL;
	unsigned n = 0;

	if (read_file("/proc/net/dev", &p->file))
		return;
	for (char *line = strtok_r(p->file.buf, "\n", &save); line && n < MAX_DEVICES;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned long long v[16];
		char *colon = strchr(line, ':'), *name = line;
		const char *l;

		/* "  eth0:123 ..." (no space after the colon once counters grow) */
		if (!colon)
			continue;
		*colon = '\0';
		while (*name == ' ')
			name++;
		if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
			   "%llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13], &v[14], &v[15]) != 16)
			continue;
		n++;
		l = labels(p, "device", name, NULL);
		for (int i = 0; i < 16; i++)
			if (f[i])
				put_u64(p, f[i], l, v[i]);
	}
}

static void sample_loadavg(struct monitor_procfs *p)
{
	double l1, l5, l15;
	unsigned long running, total;

	if (read_file("/proc/loadavg", &p->file) ||
	    sscanf(p->file.buf, "%lf %lf %lf %lu/%lu", &l1, &l5, &l15, &running, &total) != 5)
		return;
	put_double(p, F_LOAD1, "", l1);
	put_double(p, F_LOAD5, "", l5);
	put_double(p, F_LOAD15, "", l15);
	put_u64(p, F_THREADS, "", total);
}

/* "some avg10=0.00 avg60=0.00 avg300=0.00 total=0" lines of a pressure
 * file; with cgroup (not NULL) only the totals, keeping series per cgroup few. */
static void parse_pressure(struct monitor_procfs *p, const char *resource, const char *cgroup,
			   const char *hier)
{
	char *save = NULL;

	for (char *line = strtok_r(p->file.buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char kind[8];
		double a10, a60, a300;
		unsigned long long total;

		if (sscanf(line, "%7s avg10=%lf avg60=%lf avg300=%lf total=%llu", kind, &a10, &a60,
			   &a300, &total) != 5)
			continue;
		if (cgroup) {
			put_double(p, F_CG_PSI, labels(p, "cgroup", cgroup, "hierarchy", hier,
						       "resource", resource, "kind", kind, NULL),
				   (double)total / 1e6);
			continue;
		}
		put_double(p, F_PSI_TOTAL, labels(p, "resource", resource, "kind", kind, NULL),
			   (double)total / 1e6);
		put_double(p, F_PSI_AVG, labels(p, "resource", resource, "kind", kind,
						 "window", "10s", NULL), a10 / 100);
		put_double(p, F_PSI_AVG, labels(p, "resource", resource, "kind", kind,
						 "window", "60s", NULL), a60 / 100);
		put_double(p, F_PSI_AVG, labels(p, "resource", resource, "kind", kind,
						 "window", "300s", NULL), a300 / 100);
	}
}

static const char *const psi_resources[] = { "cpu", "memory", "io", "irq" };

static void sample_pressure(struct monitor_procfs *p)
{
	char path[64];

	for (size_t i = 0; i < ARRAY_SIZE(psi_resources); i++) {
		snprintf(path, sizeof(path), "/proc/pressure/%s", psi_resources[i]);
		/* absent, or EOPNOTSUPP when booted with psi=0 */
		if (!read_file(path, &p->file))
			parse_pressure(p, psi_resources[i], NULL, NULL);
	}
}

/* ---------------------------------------------------------------- cgroups */

static bool read_u64(struct monitor_procfs *p, const char *dir, const char *file, uint64_t *v)
{
	char path[PATH_MAX];
	unsigned long long x;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path) ||
	    read_file(path, &p->file) || sscanf(p->file.buf, "%llu", &x) != 1)
		return false;
	*v = x;
	return true;
}

/* "8:16" -> "sdb" through /sys/dev/block, else the numbers themselves */
static void block_dev_name(const char *majmin, char *out, size_t n)
{
	char path[96], link[PATH_MAX];
	ssize_t len;

	snprintf(out, n, "%s", majmin);
	snprintf(path, sizeof(path), "/sys/dev/block/%s", majmin);
	len = readlink(path, link, sizeof(link) - 1);
	if (len > 0) {
		link[len] = '\0';
		snprintf(out, n, "%.*s", (int)(n - 1), strrchr(link, '/') ? strrchr(link, '/') + 1 : link);
	}
}

static void sample_cgroup_v2(struct monitor_procfs *p, const char *dir, const char *cg)
{
	char path[PATH_MAX], *save = NULL;
	uint64_t v;

	snprintf(path, sizeof(path), "%s/cpu.stat", dir);
	if (!read_file(path, &p->file)) {
		for (char *line = strtok_r(p->file.buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			char key[32];
			unsigned long long x;
			const char *l;

			if (sscanf(line, "%31s %llu", key, &x) != 2)
				continue;
			l = labels(p, "cgroup", cg, "hierarchy", "v2", NULL);
			if (!strcmp(key, "usage_usec"))
				put_double(p, F_CG_CPU, l, (double)x / 1e6);
			else if (!strcmp(key, "user_usec"))
				put_double(p, F_CG_CPU_USER, l, (double)x / 1e6);
			else if (!strcmp(key, "system_usec"))
				put_double(p, F_CG_CPU_SYSTEM, l, (double)x / 1e6);
			else if (!strcmp(key, "nr_throttled"))
				put_u64(p, F_CG_THROTTLED_PERIODS, l, x);
			else if (!strcmp(key, "throttled_usec"))
				put_double(p, F_CG_THROTTLED, l, (double)x / 1e6);
		}
	}
	if (read_u64(p, dir, "memory.current", &v))
		put_u64(p, F_CG_MEM, labels(p, "cgroup", cg, "hierarchy", "v2", NULL), v);
	if (read_u64(p, dir, "memory.max", &v)) /* "max" does not parse: no limit */
		put_u64(p, F_CG_MEM_LIMIT, labels(p, "cgroup", cg, "hierarchy", "v2", NULL), v);
	snprintf(path, sizeof(path), "%s/io.stat", dir);
	if (!read_file(path, &p->file)) {
		save = NULL;
		for (char *line = strtok_r(p->file.buf, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			unsigned long long rb, wb, rio, wio;
			char majmin[32], dev[64];
			const char *l;

			if (sscanf(line, "%31s rbytes=%llu wbytes=%llu rios=%llu wios=%llu", majmin,
				   &rb, &wb, &rio, &wio) != 5)
				continue;
			block_dev_name(majmin, dev, sizeof(dev));
			l = labels(p, "cgroup", cg, "hierarchy", "v2", "device", dev, NULL);
			put_u64(p, F_CG_IO_READ_BYTES, l, rb);
			put_u64(p, F_CG_IO_WRITE_BYTES, l, wb);
			put_u64(p, F_CG_IO_READS, l, rio);
			put_u64(p, F_CG_IO_WRITES, l, wio);
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(psi_resources); i++) {
		snprintf(path, sizeof(path), "%s/%s.pressure", dir, psi_resources[i]);
		if (!read_file(path, &p->file))
			parse_pressure(p, psi_resources[i], cg, "v2");
	}
}

static void sample_cgroup(struct monitor_procfs *p, enum hier h, const char *dir, const char *cg)
{
	uint64_t v;

	switch (h) {
	case H_V2:
		sample_cgroup_v2(p, dir, cg);
		break;
	case H_V1_MEMORY:
		if (read_u64(p, dir, "memory.usage_in_bytes", &v))
			put_u64(p, F_CG_MEM, labels(p, "cgroup", cg, "hierarchy", "v1", NULL), v);
		/* v1 says "no limit" with a huge page-aligned number */
		if (read_u64(p, dir, "memory.limit_in_bytes", &v) && v < (1ULL << 62))
			put_u64(p, F_CG_MEM_LIMIT, labels(p, "cgroup", cg, "hierarchy", "v1", NULL), v);
		break;
	case H_V1_CPUACCT:
		if (read_u64(p, dir, "cpuacct.usage", &v))
			put_double(p, F_CG_CPU, labels(p, "cgroup", cg, "hierarchy", "v1", NULL),
				   (double)v / 1e9);
		break;
	default:
		break;
	}
}

/*
 * Breadth first, so that with more cgroups than --max-cgroups the top of
 * the tree (slices, then services) is what gets exported. The queue holds
 * at most max_cgroups paths: memory stays bounded however many exist.
 */
static void sample_hierarchy(struct monitor_procfs *p, enum hier h)
{
	const char *root = p->root[h];
	size_t rootlen = strlen(root), head = 0, nq = 0, alloc = 0;
	char **queue = NULL;
	bool truncated = false;
	char count[32];

	xgrow(&queue, &alloc, 1, sizeof(*queue));
	queue[nq++] = xstrdup(root);
	while (head < nq) {
		char *dir = queue[head++];
		const char *cg = dir[rootlen] ? dir + rootlen : "/";
		DIR *d;
		struct dirent *de;

		sample_cgroup(p, h, dir, cg);
		if (!(d = opendir(dir)))
			continue;
		while ((de = readdir(d))) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.')
				continue;
			if (nq >= p->max_cgroups) {
				truncated = true;
				break;
			}
			strbuf_reset(&p->path);
			strbuf_addf(&p->path, "%s/%s", dir, de->d_name);
			xgrow(&queue, &alloc, nq + 1, sizeof(*queue));
			queue[nq++] = xstrdup(p->path.buf);
		}
		closedir(d);
	}
	for (size_t i = 0; i < nq; i++)
		free(queue[i]);
	free(queue);
	snprintf(count, sizeof(count), "%s%s", hier_names[h],
		 h == H_V1_MEMORY ? "-memory" : h == H_V1_CPUACCT ? "-cpuacct" : "");
	put_u64(p, F_CG_EXPORTED, labels(p, "hierarchy", count, NULL), nq);
	put_u64(p, F_CG_TRUNCATED, labels(p, "hierarchy", count, NULL), truncated);
}

/* The cgroup2 mount, and the v1 hierarchies holding the memory and cpuacct
 * controllers, from /proc/self/mounts. */
static void find_hierarchies(struct monitor_procfs *p)
{
	struct strbuf sb = STRBUF_INIT;
	char *save = NULL;

	if (read_file("/proc/self/mounts", &sb)) {
		strbuf_release(&sb);
		return;
	}
	for (char *line = strtok_r(sb.buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char dev[256], mnt[PATH_MAX], type[32], opts[1024], *osave = NULL;
		enum hier h = H_COUNT;

		if (sscanf(line, "%255s %4095s %31s %1023s", dev, mnt, type, opts) != 4)
			continue;
		if (!strcmp(type, "cgroup2")) {
			h = H_V2;
		} else if (!strcmp(type, "cgroup")) {
			for (char *o = strtok_r(opts, ",", &osave); o; o = strtok_r(NULL, ",", &osave)) {
				if (!strcmp(o, "memory"))
					h = H_V1_MEMORY;
				else if (!strcmp(o, "cpuacct"))
					h = H_V1_CPUACCT;
			}
		}
		/* mounts lists octal escapes (\040): such roots are skipped */
		if (h != H_COUNT && !p->root[h] && !strchr(mnt, '\\'))
			p->root[h] = xstrdup(mnt);
	}
	strbuf_release(&sb);
}

int monitor_procfs_open(struct monitor_procfs **out, const struct anole_monitor_opts *o)
{
	struct monitor_procfs *p = xcalloc(1, sizeof(*p));

	p->max_cgroups = o->max_cgroups;
	p->clk_tck = sysconf(_SC_CLK_TCK);
	if (p->clk_tck <= 0)
		p->clk_tck = 100;
	find_hierarchies(p);
	if (o->cgroup_root) {
		struct stat st;
		char *real = realpath(o->cgroup_root, NULL);

		if (!real || stat(real, &st) || !S_ISDIR(st.st_mode) ||
		    (!p->root[H_V2] || strncmp(real, p->root[H_V2], strlen(p->root[H_V2])))) {
			int err = real ? ENOTDIR : errno;

			free(real);
			monitor_procfs_free(p);
			return anole_error_code(err, "--cgroup-root %s: not a cgroup v2 directory",
						o->cgroup_root);
		}
		free(p->root[H_V2]);
		p->root[H_V2] = real;
	}
	if (!p->root[H_V2] && !p->root[H_V1_MEMORY] && !p->root[H_V1_CPUACCT])
		anole_warn("monitor: no cgroup hierarchy mounted: no cgroup metrics");
	*out = p;
	return 0;
}

void monitor_procfs_free(struct monitor_procfs *p)
{
	if (!p)
		return;
	for (int i = 0; i < F_COUNT; i++)
		strbuf_release(&p->fam[i]);
	strbuf_release(&p->file);
	strbuf_release(&p->labels);
	strbuf_release(&p->path);
	for (int h = 0; h < H_COUNT; h++)
		free(p->root[h]);
	free(p);
}

void monitor_procfs_sample(struct monitor_procfs *p, struct strbuf *out)
{
	for (int i = 0; i < F_COUNT; i++)
		strbuf_reset(&p->fam[i]);
	sample_stat(p);
	sample_meminfo(p);
	sample_diskstats(p);
	sample_netdev(p);
	sample_loadavg(p);
	sample_pressure(p);
	for (int h = 0; h < H_COUNT; h++)
		if (p->root[h])
			sample_hierarchy(p, (enum hier)h);
	for (int i = 0; i < F_COUNT; i++) {
		if (!p->fam[i].len)
			continue;
		anole_metrics_family(out, fams[i].name, fams[i].type, fams[i].help);
		strbuf_add(out, p->fam[i].buf, p->fam[i].len);
	}
}
