// SPDX-License-Identifier: Apache-2.0
/*
 * anole diag loadtask: why the load average is high. The load average
 * counts threads that are runnable (R) or in uninterruptible sleep (D);
 * this walks /proc for those threads and shows, beside /proc/loadavg, how
 * many there are by state and by command, and each one with its wchan and
 * kernel stack (/proc/PID/task/TID/stack, root only): a D thread's stack
 * says what it waits for. No BPF: it reads /proc, as SysAK's loadtask does.
 */
#include "diag.h"

#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool opt_no_stacks;

static const struct option loadtask_longopts[] = {
	{ "no-stacks", no_argument, NULL, 'S' },
	{ NULL, 0, NULL, 0 },
};

static int loadtask_parse(int opt, const char *arg)
{
	(void)arg;
	if (opt == 'S') {
		opt_no_stacks = true;
		return 0;
	}
	return -EINVAL;
}

struct load_thread {
	unsigned pid, tid;
	char state;
	char comm[DIAG_COMM_LEN + 1];
	char wchan[64];
	char *stack; /* /proc's lines, "[<0>] " cut; NULL if unreadable */
};

struct load_comm {
	char comm[DIAG_COMM_LEN + 1];
	unsigned r, d;
};

/* The contents of a small /proc file, NUL-terminated, or NULL. */
static char *read_small(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	FILE *f = fopen(path, "re");
	char buf[4096];
	size_t n;

	if (!f)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	if (!sb.buf)
		strbuf_addstr(&sb, "");
	return strbuf_detach(&sb, NULL);
}

/* "[<0>] kernel_clone+0x1af/0x3e0\n..." -> "kernel_clone+0x1af/0x3e0\n..." */
static char *read_stack(const char *dir)
{
	struct strbuf sb = STRBUF_INIT;
	char path[128], *raw, *p;

	snprintf(path, sizeof(path), "%s/stack", dir);
	raw = read_small(path);
	if (!raw)
		return NULL;
	for (p = raw; *p;) {
		char *eol = strchr(p, '\n'), *sym = strstr(p, "] ");
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (sym && sym < p + len) {
			strbuf_add(&sb, sym + 2, len - (size_t)(sym + 2 - p));
			strbuf_addch(&sb, '\n');
		}
		p += len + (eol ? 1 : 0);
	}
	free(raw);
	if (!sb.buf)
		strbuf_addstr(&sb, "");
	return strbuf_detach(&sb, NULL);
}

/* Read one thread's state and comm; true if R or D. */
static bool read_thread(const char *dir, struct load_thread *t)
{
	char path[128], *stat, *open, *close;
	size_t n;

	snprintf(path, sizeof(path), "%s/stat", dir);
	stat = read_small(path);
	if (!stat)
		return false;
	/* "TID (comm) S ...": comm may hold spaces and parentheses */
	open = strchr(stat, '(');
	close = strrchr(stat, ')');
	if (!open || !close || close < open || close[1] != ' ' || !close[2]) {
		free(stat);
		return false;
	}
	n = (size_t)(close - open - 1);
	if (n > DIAG_COMM_LEN)
		n = DIAG_COMM_LEN;
	memcpy(t->comm, open + 1, n);
	t->comm[n] = '\0';
	t->state = close[2];
	free(stat);
	return t->state == 'R' || t->state == 'D';
}

static void read_details(const char *dir, struct load_thread *t)
{
	char path[128], *w;

	snprintf(path, sizeof(path), "%s/wchan", dir);
	w = read_small(path);
	snprintf(t->wchan, sizeof(t->wchan), "%s", w && *w && strcmp(w, "0") ? w : "-");
	free(w);
	t->wchan[strcspn(t->wchan, "\n")] = '\0';
	t->stack = opt_no_stacks ? NULL : read_stack(dir);
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Every R and D thread (but this process's), filtered by -p/-c. */
static int collect(const struct diag_opts *o, struct load_thread **out, size_t *nout,
		   unsigned *threads)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	size_t alloc = 0, n = 0;
	unsigned self = (unsigned)getpid();
	struct load_thread *ts = NULL;

	*threads = 0;
	if (!proc)
		return anole_error(errno, "loadtask: /proc");
	while ((de = readdir(proc))) {
		char dir[64];
		DIR *tasks;
		struct dirent *te;
		unsigned pid;

		if (!all_digits(de->d_name))
			continue;
		pid = (unsigned)strtoul(de->d_name, NULL, 10);
		if (o->pid && pid != (unsigned)o->pid)
			continue;
		snprintf(dir, sizeof(dir), "/proc/%u/task", pid);
		tasks = opendir(dir);
		if (!tasks) /* exited meanwhile */
			continue;
		while ((te = readdir(tasks))) {
			struct load_thread t = { .pid = pid };
			char tdir[96];
			uint32_t tgid;

			if (!all_digits(te->d_name))
				continue;
			(*threads)++;
			t.tid = (unsigned)strtoul(te->d_name, NULL, 10);
			snprintf(tdir, sizeof(tdir), "%s/%u", dir, t.tid);
			if (pid == self || !read_thread(tdir, &t))
				continue;
			if (o->cgroup && !diag_thread_wanted(o, t.tid, &tgid))
				continue;
			read_details(tdir, &t);
			xgrow(&ts, &alloc, n + 1, sizeof(*ts));
			ts[n++] = t;
		}
		closedir(tasks);
	}
	closedir(proc);
	*out = ts;
	*nout = n;
	return 0;
}

static int thread_cmp(const void *a, const void *b)
{
	const struct load_thread *x = a, *y = b;

	/* D first (what the load waits for), then by pid and tid */
	if (x->state != y->state)
		return x->state == 'D' ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->tid < y->tid ? -1 : x->tid > y->tid;
}

static int comm_cmp(const void *a, const void *b)
{
	const struct load_comm *x = a, *y = b;

	if (x->r + x->d != y->r + y->d)
		return x->r + x->d > y->r + y->d ? -1 : 1;
	return strcmp(x->comm, y->comm);
}

static struct load_comm *by_comm(const struct load_thread *ts, size_t n, size_t *ncomm)
{
	struct load_comm *cs = NULL;
	size_t alloc = 0, nc = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j = 0;

		while (j < nc && strcmp(cs[j].comm, ts[i].comm))
			j++;
		if (j == nc) {
			xgrow(&cs, &alloc, nc + 1, sizeof(*cs));
			memset(&cs[nc], 0, sizeof(*cs));
			memcpy(cs[nc].comm, ts[i].comm, sizeof(cs[nc].comm));
			nc++;
		}
		if (ts[i].state == 'R')
			cs[j].r++;
		else
			cs[j].d++;
	}
	if (nc)
		qsort(cs, nc, sizeof(*cs), comm_cmp);
	*ncomm = nc;
	return cs;
}

static void text_str(struct strbuf *sb, const char *s)
{
	diag_text_bytes(sb, s, strlen(s));
}

static void report_text(const struct diag_opts *o, const double load[3], const char *sched,
			const struct load_thread *ts, size_t n, const struct load_comm *cs,
			size_t nc, unsigned threads)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned nr = 0, nd = 0;

	for (size_t i = 0; i < n; i++)
		ts[i].state == 'R' ? nr++ : nd++;
	if (o->timestamp)
		diag_print_time(stdout);
	printf("load average: %.2f %.2f %.2f, kernel runnable/threads: %s\n", load[0], load[1],
	       load[2], sched);
	printf("threads: %u, R (runnable): %u, D (uninterruptible): %u%s\n", threads, nr, nd,
	       o->pid || o->cgroup ? " (filtered)" : "");
	if (nc) {
		printf("\n%-7s %-7s %-7s %s\n", "R", "D", "TOTAL", "COMM");
		for (size_t i = 0; i < nc; i++) {
			strbuf_reset(&sb);
			text_str(&sb, cs[i].comm);
			printf("%-7u %-7u %-7u %s\n", cs[i].r, cs[i].d, cs[i].r + cs[i].d, sb.buf);
		}
	}
	if (n)
		printf("\n%-2s %-7s %-7s %-16s %s\n", "S", "PID", "TID", "COMM", "WCHAN");
	for (size_t i = 0; i < n; i++) {
		const struct load_thread *t = &ts[i];

		strbuf_reset(&sb);
		text_str(&sb, t->comm);
		printf("%-2c %-7u %-7u %-16s %s\n", t->state, t->pid, t->tid, sb.buf, t->wchan);
		if (t->stack)
			for (const char *p = t->stack; *p;) {
				size_t len = strcspn(p, "\n");

				strbuf_reset(&sb);
				diag_text_bytes(&sb, p, len);
				printf("    %s\n", sb.buf);
				p += len + (p[len] ? 1 : 0);
			}
	}
	printf("\n");
	strbuf_release(&sb);
}

static void report_json(const double load[3], const char *sched, const struct load_thread *ts,
			size_t n, const struct load_comm *cs, size_t nc, unsigned threads)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned nr = 0, nd = 0;
	struct timespec now;

	for (size_t i = 0; i < n; i++)
		ts[i].state == 'R' ? nr++ : nd++;
	clock_gettime(CLOCK_REALTIME, &now);
	strbuf_addf(&sb, "{\"tool\":\"loadtask\",\"time\":%.6f,\"loadavg\":[%.2f,%.2f,%.2f],"
		    "\"kernel_runnable\":", now.tv_sec + now.tv_nsec / 1e9, load[0], load[1], load[2]);
	strbuf_add_json_string(&sb, sched, strlen(sched));
	strbuf_addf(&sb, ",\"threads\":%u,\"by_state\":{\"R\":%u,\"D\":%u},\"by_comm\":[",
		    threads, nr, nd);
	for (size_t i = 0; i < nc; i++) {
		strbuf_addstr(&sb, i ? ",{\"comm\":" : "{\"comm\":");
		diag_json_bytes(&sb, cs[i].comm, strlen(cs[i].comm));
		strbuf_addf(&sb, ",\"R\":%u,\"D\":%u}", cs[i].r, cs[i].d);
	}
	strbuf_addstr(&sb, "],\"tasks\":[");
	for (size_t i = 0; i < n; i++) {
		const struct load_thread *t = &ts[i];

		strbuf_addf(&sb, "%s{\"pid\":%u,\"tid\":%u,\"state\":\"%c\",\"comm\":", i ? "," : "",
			    t->pid, t->tid, t->state);
		diag_json_bytes(&sb, t->comm, strlen(t->comm));
		strbuf_addstr(&sb, ",\"wchan\":");
		diag_json_bytes(&sb, t->wchan, strlen(t->wchan));
		strbuf_addstr(&sb, ",\"stack\":");
		if (!t->stack) {
			strbuf_addstr(&sb, "null");
		} else {
			/* function names, as the BPF tools give them: "kernel_clone+0x1af/0x3e0" -> "kernel_clone" */
			strbuf_addch(&sb, '[');
			for (const char *p = t->stack; *p;) {
				size_t len = strcspn(p, "\n"), name = strcspn(p, "+\n");

				strbuf_addstr(&sb, p == t->stack ? "" : ",");
				diag_json_bytes(&sb, p, name < len ? name : len);
				p += len + (p[len] ? 1 : 0);
			}
			strbuf_addch(&sb, ']');
		}
		strbuf_addch(&sb, '}');
	}
	strbuf_addstr(&sb, "]}");
	diag_emit_line(&sb);
	strbuf_release(&sb);
}

static int loadtask_report(void *skel, const struct diag_opts *o)
{
	struct load_thread *ts = NULL;
	struct load_comm *cs;
	size_t n = 0, nc = 0;
	unsigned threads;
	double load[3] = { 0, 0, 0 };
	char sched[64] = "?";
	char *la = read_small("/proc/loadavg");
	int ret;

	(void)skel;
	/* "0.23 0.53 0.76 2/86 24793": the 4th field is runnable/threads now */
	if (!la || sscanf(la, "%lf %lf %lf %63s", &load[0], &load[1], &load[2], sched) != 4) {
		free(la);
		return anole_error_code(EIO, "loadtask: cannot read /proc/loadavg");
	}
	free(la);
	if ((ret = collect(o, &ts, &n, &threads)))
		return ret;
	if (n)
		qsort(ts, n, sizeof(*ts), thread_cmp);
	cs = by_comm(ts, n, &nc);
	if (o->json)
		report_json(load, sched, ts, n, cs, nc, threads);
	else
		report_text(o, load, sched, ts, n, cs, nc, threads);
	fflush(stdout);
	for (size_t i = 0; i < n; i++)
		free(ts[i].stack);
	free(ts);
	free(cs);
	return 0;
}

static int loadtask_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	(void)skel;
	(void)o;
	(void)rb;
	if (!opt_no_stacks && access("/proc/self/stack", R_OK))
		anole_warn("loadtask: kernel stacks are unreadable here (need root): reporting without them");
	return 0;
}

const struct diag_tool diag_tool_loadtask = {
	.name = "loadtask",
	.summary = "why the load is high: runnable (R) and uninterruptible (D) threads, "
		   "with kernel stacks",
	.usage = "anole diag loadtask [options] [INTERVAL [COUNT]]",
	.help = "  -S, --no-stacks        leave out the kernel stacks\n"
		"  (reads /proc, no BPF; -p/-c select the threads listed)\n",
	.shortopts = "S",
	.longopts = loadtask_longopts,
	.flags = DIAG_F_HIST | DIAG_F_SNAPSHOT | DIAG_F_PID | DIAG_F_CGROUP,
	.source = "/proc/loadavg, /proc/PID/task/TID/{stat,wchan,stack}",
	.parse = loadtask_parse,
	.start = loadtask_start,
	.report = loadtask_report,
};
