// SPDX-License-Identifier: Apache-2.0
/*
 * Observability of a lazy mount, served by lib/httpd.c:
 *   STATE/ctl.sock  HTTP on a unix socket: GET /stats (JSON, or text with
 *                   ?format=text) for `anole image stats`, GET /metrics.
 *                   Only root and the daemon's own user are answered (the
 *                   peer's SO_PEERCRED), whatever the directory allows.
 *   --metrics ADDR  the same counters in Prometheus text format over TCP,
 *                   GET /metrics, read only; with --metrics-token-file only
 *                   for requests with that bearer token.
 * Nothing here changes the daemon's state; a command that does belongs on
 * the unix socket (authenticated by the kernel) with ANOLE_HTTPD_LOGGED.
 */
#include "lazyd.h"
#include "anole/error.h"
#include "anole/httpd.h"
#include "anole/metrics.h"
#include "anole/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t present_chunks(struct lazyd *d, uint64_t *total)
{
	uint64_t n = 0;

	*total = 0;
	for (unsigned i = 0; i < d->ndevblobs; i++) {
		n += lazy_blob_present_chunks(d->devblobs[i]);
		*total += lazy_blob_info(d->devblobs[i])->nchunks;
	}
	return n;
}

void lazyd_format_stats(struct lazyd *d, bool json, struct strbuf *out)
{
	struct lazy_stats st;
	struct anole_blobstore_stats bs;
	uint64_t total, present = present_chunks(d, &total);
	uint64_t blob_bytes = 0;

	lazy_cache_get_stats(d->cache, &st);
	anole_blobstore_get_stats(d->store, &bs);
	for (unsigned i = 0; i < d->ndevblobs; i++)
		blob_bytes += lazy_blob_info(d->devblobs[i])->compressed_size;
	if (!json) {
		strbuf_addf(out, "mountpoint        %s\nmode              %s\n", d->mnt,
			    d->kernel_mode ? "kernel" : "fuse");
		strbuf_addf(out, "blobs             %u (%llu bytes in transport form), %u read directly\n",
			    d->ndevblobs, (unsigned long long)blob_bytes, d->direct_blobs);
		strbuf_addf(out, "chunks present    %llu / %llu\n", (unsigned long long)present,
			    (unsigned long long)total);
		strbuf_addf(out, "bytes fetched     %llu in %llu requests (%llu chunks)\n",
			    (unsigned long long)st.bytes_fetched, (unsigned long long)st.fetch_requests,
			    (unsigned long long)st.chunks_fetched);
		strbuf_addf(out, "cache hits        %llu chunks, misses %llu\n",
			    (unsigned long long)st.chunk_hits, (unsigned long long)st.chunk_misses);
		strbuf_addf(out, "errors            fetch %llu, verify %llu, cache refetch %llu\n",
			    (unsigned long long)st.fetch_errors, (unsigned long long)st.verify_failures,
			    (unsigned long long)st.cache_refetches);
		strbuf_addf(out, "reads             %llu (%llu bytes)\n", (unsigned long long)st.reads,
			    (unsigned long long)st.read_bytes);
		strbuf_addf(out, "prefetch          %s, %llu files\n",
			    atomic_load(&d->prefetch_done) ? "done" : "running",
			    (unsigned long long)atomic_load(&d->prefetched_files));
		strbuf_addstr(out, "fetch latency     ");
		for (unsigned i = 0; i < LAZY_HIST_BUCKETS; i++)
			if (st.latency_us_hist[i])
				strbuf_addf(out, "<%lluus:%llu ", 1ULL << (i + 1),
					    (unsigned long long)st.latency_us_hist[i]);
		strbuf_addch(out, '\n');
		return;
	}
	strbuf_addstr(out, "{\"mountpoint\":");
	strbuf_add_json_string(out, d->mnt, strlen(d->mnt));
	strbuf_addf(out, ",\"direct_blobs\":%u", d->direct_blobs);
	strbuf_addf(out, ",\"mode\":\"%s\",\"blobs\":%u,\"blob_bytes\":%llu,\"chunks\":%llu,"
		    "\"chunks_present\":%llu,\"bytes_fetched\":%llu,\"fetch_requests\":%llu,"
		    "\"chunks_fetched\":%llu,\"chunk_hits\":%llu,\"chunk_misses\":%llu,"
		    "\"fetch_errors\":%llu,\"verify_failures\":%llu,\"cache_refetches\":%llu,"
		    "\"reads\":%llu,\"read_bytes\":%llu,\"http_requests\":%llu,\"http_retries\":%llu,"
		    "\"prefetch_done\":%s,\"prefetched_files\":%llu,\"latency_us_sum\":%llu,"
		    "\"latency_us_hist\":[",
		    d->kernel_mode ? "kernel" : "fuse", d->ndevblobs, (unsigned long long)blob_bytes,
		    (unsigned long long)total, (unsigned long long)present,
		    (unsigned long long)st.bytes_fetched, (unsigned long long)st.fetch_requests,
		    (unsigned long long)st.chunks_fetched, (unsigned long long)st.chunk_hits,
		    (unsigned long long)st.chunk_misses, (unsigned long long)st.fetch_errors,
		    (unsigned long long)st.verify_failures, (unsigned long long)st.cache_refetches,
		    (unsigned long long)st.reads, (unsigned long long)st.read_bytes,
		    (unsigned long long)bs.requests, (unsigned long long)bs.retries,
		    atomic_load(&d->prefetch_done) ? "true" : "false",
		    (unsigned long long)atomic_load(&d->prefetched_files),
		    (unsigned long long)st.latency_us_sum);
	for (unsigned i = 0; i < LAZY_HIST_BUCKETS; i++)
		strbuf_addf(out, "%s%llu", i ? "," : "", (unsigned long long)st.latency_us_hist[i]);
	strbuf_addstr(out, "]}\n");
}

void lazyd_format_prometheus(struct lazyd *d, struct strbuf *out)
{
	struct lazy_stats st;
	uint64_t total, present = present_chunks(d, &total);
	struct strbuf labels = STRBUF_INIT;

	lazy_cache_get_stats(d->cache, &st);
	anole_metrics_label(&labels, "mountpoint", d->mnt);
	anole_metrics_one_u64(out, "anole_lazy_fetched_bytes_total", "counter",
			      "Bytes fetched from the blob store.", labels.buf, st.bytes_fetched);
	anole_metrics_one_u64(out, "anole_lazy_fetch_requests_total", "counter",
			      "Range requests to the blob store.", labels.buf, st.fetch_requests);
	anole_metrics_one_u64(out, "anole_lazy_fetched_chunks_total", "counter",
			      "Chunks fetched and verified.", labels.buf, st.chunks_fetched);
	anole_metrics_one_u64(out, "anole_lazy_cache_hits_total", "counter",
			      "Chunk reads served from the cache.", labels.buf, st.chunk_hits);
	anole_metrics_one_u64(out, "anole_lazy_cache_misses_total", "counter",
			      "Chunk reads that needed a fetch.", labels.buf, st.chunk_misses);
	anole_metrics_one_u64(out, "anole_lazy_fetch_errors_total", "counter",
			      "Fetches that failed after retries.", labels.buf, st.fetch_errors);
	anole_metrics_one_u64(out, "anole_lazy_verify_failures_total", "counter",
			      "Chunks whose digest did not match.", labels.buf, st.verify_failures);
	anole_metrics_one_u64(out, "anole_lazy_read_bytes_total", "counter",
			      "Bytes read by the mount.", labels.buf, st.read_bytes);
	anole_metrics_one_u64(out, "anole_lazy_chunks_present", "gauge",
			      "Chunks in the local cache.", labels.buf, present);
	anole_metrics_one_u64(out, "anole_lazy_chunks", "gauge", "Chunks of all blobs.",
			      labels.buf, total);
	/* the cache's last bucket also holds every slower fetch: le="+Inf" */
	anole_metrics_family(out, "anole_lazy_fetch_latency_seconds", "histogram",
			     "Latency of range requests.");
	anole_metrics_log2_histogram(out, "anole_lazy_fetch_latency_seconds", labels.buf,
				     st.latency_us_hist, LAZY_HIST_BUCKETS, 1e-6,
				     (double)st.latency_us_sum / 1e6);
	strbuf_release(&labels);
}

static void get_stats(const struct anole_httpd_request *r, struct anole_httpd_response *res,
		      void *arg)
{
	const char *format = anole_httpd_query(r, "format");

	if (format && !strcmp(format, "text")) {
		res->content_type = "text/plain; charset=utf-8";
		lazyd_format_stats(arg, false, &res->body);
	} else if (!format || !strcmp(format, "json")) {
		res->content_type = "application/json";
		lazyd_format_stats(arg, true, &res->body);
	} else {
		anole_httpd_json_error(res, 400, "format is json or text, not '%s'", format);
	}
}

static void get_metrics(const struct anole_httpd_request *r, struct anole_httpd_response *res,
			void *arg)
{
	res->content_type = ANOLE_METRICS_CONTENT_TYPE;
	lazyd_format_prometheus(arg, &res->body);
}

static unsigned metrics_authorize(const struct anole_httpd_request *r, void *arg)
{
	return anole_httpd_check_bearer(r, arg);
}

/* The control socket answers root and the user the daemon runs as. */
static unsigned ctl_authorize(const struct anole_httpd_request *r, void *arg)
{
	return r->peer_uid == 0 || r->peer_uid == geteuid() ? 0 : 403;
}

int lazyd_start_control(struct lazyd *d)
{
	const struct anole_httpd_route ctl_routes[] = {
		{ "GET", "/stats", get_stats, d, ANOLE_HTTPD_AUTH },
		{ "GET", "/metrics", get_metrics, d, ANOLE_HTTPD_AUTH },
	};
	/* "/" too: scrapers pointed at the bare address worked before */
	unsigned auth = d->opts->metrics_token ? ANOLE_HTTPD_AUTH : 0;
	const struct anole_httpd_route metrics_routes[] = {
		{ "GET", "/metrics", get_metrics, d, auth },
		{ "GET", "/", get_metrics, d, auth },
	};
	char *ctl = xmalloc(strlen(d->state_dir) + sizeof("unix:/ctl.sock"));
	struct anole_httpd_opts o = {
		.name = "control", .listen = ctl, .unix_mode = 0600,
		.routes = ctl_routes, .nroutes = 2, .authorize = ctl_authorize,
		.max_body = 4096,
	};
	int ret;

	sprintf(ctl, "unix:%s/ctl.sock", d->state_dir);
	ret = anole_httpd_start(&d->ctl_httpd, &o);
	free(ctl);
	if (ret || !d->opts->metrics_addr)
		return ret;
	o = (struct anole_httpd_opts){
		.name = "metrics", .option = "--metrics", .listen = d->opts->metrics_addr,
		.routes = metrics_routes, .nroutes = 2, .max_body = 4096,
		.authorize = metrics_authorize, .auth_arg = (void *)d->opts->metrics_token,
	};
	ret = anole_httpd_start(&d->metrics_httpd, &o);
	if (!ret)
		anole_info("serving Prometheus metrics on http://%s/metrics (port %u)",
			   d->opts->metrics_addr, anole_httpd_port(d->metrics_httpd));
	return ret;
}

void lazyd_stop_control(struct lazyd *d)
{
	anole_httpd_stop(d->ctl_httpd);
	anole_httpd_stop(d->metrics_httpd);
	d->ctl_httpd = d->metrics_httpd = NULL;
}
