// SPDX-License-Identifier: Apache-2.0
/* anole diag tcpstates: TCP state changes, with the time spent in each state. */
#include "diag.h"
#include "tcpstates.h"
#include "tcpstates.skel.h"

#include "anole/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned opt_sport, opt_dport;

static const struct option tcpstates_longopts[] = {
	{ "localport", required_argument, NULL, 'L' },
	{ "remoteport", required_argument, NULL, 'D' },
	{ NULL, 0, NULL, 0 },
};

static int parse_port(const char *arg, unsigned *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v <= 0 || v > 65535)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int tcpstates_parse(int opt, const char *arg)
{
	switch (opt) {
	case 'L':
		return parse_port(arg, &opt_sport);
	case 'D':
		return parse_port(arg, &opt_dport);
	}
	return -EINVAL;
}

static int tcpstates_prepare(void *skel, const struct diag_opts *o)
{
	struct tcpstates_bpf *s = skel;

	s->rodata->targ_sport = (__u16)opt_sport;
	s->rodata->targ_dport = (__u16)opt_dport;
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct diag_opts *o = ctx;
	const struct tcpstates_event *e = data;
	struct strbuf sb = STRBUF_INIT;
	char saddr[64], daddr[64];
	int ipver = e->family == 10 ? 6 : 4;

	if (size < sizeof(*e))
		return 0;
	diag_inet_addr(saddr, sizeof(saddr), e->family, e->saddr);
	diag_inet_addr(daddr, sizeof(daddr), e->family, e->daddr);
	if (o->json) {
		strbuf_addf(&sb, "{\"time\":%.6f,\"skaddr\":\"0x%llx\",\"pid\":%u,\"comm\":",
			    diag_ktime_to_real(o, e->ts), (unsigned long long)e->skaddr, e->pid);
		diag_json_str(&sb, e->comm, sizeof(e->comm));
		strbuf_addf(&sb, ",\"ip\":%d,\"saddr\":\"%s\",\"sport\":%u,\"daddr\":\"%s\",\"dport\":%u,"
			    "\"oldstate\":\"%s\",\"newstate\":\"%s\",\"ms\":%.3f}", ipver, saddr, e->sport,
			    daddr, e->dport, diag_tcp_state_name(e->oldstate),
			    diag_tcp_state_name(e->newstate), e->delta_us / 1000.0);
	} else {
		struct strbuf comm = STRBUF_INIT;

		if (o->timestamp)
			diag_add_event_time(&sb, o, e->ts);
		diag_text_bytes(&comm, e->comm, strnlen(e->comm, sizeof(e->comm)));
		strbuf_addf(&sb, "%-16llx %-7u %-10.10s %-15s %-5u %-15s %-5u %-11s -> %-11s %.3f",
			    (unsigned long long)e->skaddr, e->pid, comm.buf, saddr, e->sport, daddr,
			    e->dport, diag_tcp_state_name(e->oldstate), diag_tcp_state_name(e->newstate),
			    e->delta_us / 1000.0);
		strbuf_release(&comm);
	}
	diag_emit_line(&sb);
	strbuf_release(&sb);
	return 0;
}

static int tcpstates_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	struct tcpstates_bpf *s = skel;

	return diag_open_events(rb, bpf_map__fd(s->maps.ts_events), handle_event, o,
				"%-16s %-7s %-10s %-15s %-5s %-15s %-5s %-11s -> %-11s %s\n",
				"SKADDR", "PID", "COMM", "LADDR", "LPORT", "RADDR", "RPORT",
				"OLDSTATE", "NEWSTATE", "MS");
}

static void tcpstates_stop(void *skel, const struct diag_opts *o)
{
	diag_warn_dropped("tcpstates", ((struct tcpstates_bpf *)skel)->bss->ts_dropped);
}

DIAG_SKEL_OPS(tcpstates_skel, tcpstates_bpf);

static const struct diag_variant tcpstates_variants[] = {
	{ "tp_btf", { DIAG_PROG("ts_btf_state") } },
	{ "raw_tp", { DIAG_PROG("ts_raw_state") } },
	{ "tracepoint", { DIAG_PROG("ts_tp_state") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_tcpstates = {
	.name = "tcpstates",
	.summary = "trace TCP state changes, with the time spent in each state",
	.usage = "anole diag tcpstates [options]",
	.help = "  -L, --localport PORT   only sockets with this local port\n"
		"  -D, --remoteport PORT  only sockets with this remote port\n"
		"  (no -p/-c: many changes happen in softirq, outside the socket's task)\n",
	.shortopts = "L:D:",
	.longopts = tcpstates_longopts,
	.skel = &tcpstates_skel,
	.variants = tcpstates_variants,
	.parse = tcpstates_parse,
	.prepare = tcpstates_prepare,
	.start = tcpstates_start,
	.stop = tcpstates_stop,
};
