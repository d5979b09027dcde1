// SPDX-License-Identifier: Apache-2.0
/* anole diag tcpretrans: every TCP retransmission, with its connection. */
#include "diag.h"
#include "tcpretrans.h"
#include "tcpretrans.skel.h"

#include "anole/strbuf.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static int tcpretrans_prepare(void *skel, const struct diag_opts *o)
{
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	const struct diag_opts *o = ctx;
	const struct tcpretrans_event *e = data;
	struct strbuf sb = STRBUF_INIT;
	char saddr[64], daddr[64];
	int ipver = e->family == 10 ? 6 : 4;

	if (size < sizeof(*e))
		return 0;
	diag_inet_addr(saddr, sizeof(saddr), e->family, e->saddr);
	diag_inet_addr(daddr, sizeof(daddr), e->family, e->daddr);
	if (o->json) {
		strbuf_addf(&sb, "{\"time\":%.6f,\"pid\":%u,\"comm\":", diag_ktime_to_real(o, e->ts), e->pid);
		diag_json_str(&sb, e->comm, sizeof(e->comm));
		strbuf_addf(&sb, ",\"ip\":%d,\"saddr\":\"%s\",\"sport\":%u,\"daddr\":\"%s\",\"dport\":%u,"
			    "\"state\":\"%s\"}", ipver, saddr, e->sport, daddr, e->dport,
			    diag_tcp_state_name(e->state));
	} else {
		char l[80], r[80];

		if (o->timestamp)
			diag_add_event_time(&sb, o, e->ts);
		snprintf(l, sizeof(l), ipver == 6 ? "[%s]:%u" : "%s:%u", saddr, e->sport);
		snprintf(r, sizeof(r), ipver == 6 ? "[%s]:%u" : "%s:%u", daddr, e->dport);
		strbuf_addf(&sb, "%-7u %-2d %-25s R> %-25s %s", e->pid, ipver, l, r,
			    diag_tcp_state_name(e->state));
	}
	diag_emit_line(&sb);
	strbuf_release(&sb);
	return 0;
}

static int tcpretrans_start(void *skel, const struct diag_opts *o, struct ring_buffer **rb)
{
	struct tcpretrans_bpf *s = skel;

	return diag_open_events(rb, bpf_map__fd(s->maps.tr_events), handle_event, o,
				"%-7s %-2s %-25s T> %-25s %s\n", "PID", "IP", "LADDR:LPORT",
				"RADDR:RPORT", "STATE");
}

static void tcpretrans_stop(void *skel, const struct diag_opts *o)
{
	diag_warn_dropped("tcpretrans", ((struct tcpretrans_bpf *)skel)->bss->tr_dropped);
}

DIAG_SKEL_OPS(tcpretrans_skel, tcpretrans_bpf);

static const struct diag_variant tcpretrans_variants[] = {
	{ "tp_btf", { DIAG_PROG("tr_btf_retrans") } },
	{ "raw_tp", { DIAG_PROG("tr_raw_retrans") } },
	{ "tracepoint", { DIAG_PROG("tr_tp_retrans") } },
	DIAG_VARIANTS_END,
};

const struct diag_tool diag_tool_tcpretrans = {
	.name = "tcpretrans",
	.summary = "trace TCP retransmissions: addresses, ports, state",
	.usage = "anole diag tcpretrans [options]",
	.help = "  (no -p/-c: retransmissions mostly run from timers, outside the socket's task)\n",
	.skel = &tcpretrans_skel,
	.variants = tcpretrans_variants,
	.prepare = tcpretrans_prepare,
	.start = tcpretrans_start,
	.stop = tcpretrans_stop,
};
