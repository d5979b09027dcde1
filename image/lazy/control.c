// SPDX-License-Identifier: Apache-2.0
/*
 * Observability of a lazy mount: a unix socket in the state directory
 * answers `stats` (JSON) for `anole image stats`, and --metrics ADDR serves
 * the same counters in Prometheus text format over HTTP.
 */
#include "lazyd.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/metrics.h"
#include "anole/xalloc.h"

#include <stdio.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

/* Each client: read one request (bounded), answer, close. */
static void serve_ctl_client(struct lazyd *d, int fd)
{
	struct strbuf out = STRBUF_INIT;
	char req[256];
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n = 0;

	if (poll(&p, 1, 2000) == 1)
		n = read(fd, req, sizeof(req) - 1);
	req[n > 0 ? n : 0] = '\0';
	if (!strncmp(req, "stats-text", 10))
		lazyd_format_stats(d, false, &out);
	else if (!strncmp(req, "stats", 5))
		lazyd_format_stats(d, true, &out);
	else if (!strncmp(req, "prometheus", 10))
		lazyd_format_prometheus(d, &out);
	else
		strbuf_addstr(&out, "{\"error\":\"unknown request\"}\n");
	write_full(fd, out.buf, out.len);
	strbuf_release(&out);
}

static void serve_http_client(struct lazyd *d, int fd)
{
	struct strbuf body = STRBUF_INIT, head = STRBUF_INIT;
	char req[1024];
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n = 0;
	bool metrics;

	if (poll(&p, 1, 2000) == 1)
		n = read(fd, req, sizeof(req) - 1);
	req[n > 0 ? n : 0] = '\0';
	metrics = !strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET / ", 6);
	if (metrics)
		lazyd_format_prometheus(d, &body);
	else
		strbuf_addstr(&body, "not found\n");
	strbuf_addf(&head, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		    "Connection: close\r\n\r\n", metrics ? "200 OK" : "404 Not Found",
		    metrics ? ANOLE_METRICS_CONTENT_TYPE : "text/plain", body.len);
	write_full(fd, head.buf, head.len);
	write_full(fd, body.buf, body.len);
	strbuf_release(&head);
	strbuf_release(&body);
}

struct server { struct lazyd *d; int fd; bool http; };

static void *server_loop(void *arg)
{
	struct server *s = arg;

	while (!atomic_load(&s->d->stopping)) {
		struct pollfd p = { s->fd, POLLIN, 0 };
		int c;

		if (poll(&p, 1, 200) <= 0)
			continue;
		c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		if (s->http)
			serve_http_client(s->d, c);
		else
			serve_ctl_client(s->d, c);
		close(c);
	}
	free(s);
	return NULL;
}

static int listen_unix(struct lazyd *d)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return anole_error(errno, "cannot create control socket");
	if ((size_t)snprintf(a.sun_path, sizeof(a.sun_path), "%s/ctl.sock", d->state_dir) >=
	    sizeof(a.sun_path)) {
		close(fd);
		return anole_error_code(ENAMETOOLONG, "state directory path too long: %s", d->state_dir);
	}
	unlink(a.sun_path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		int err = errno;

		close(fd);
		return anole_error(err, "cannot listen on %s", a.sun_path);
	}
	return fd;
}

static int listen_tcp(const char *addr)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	const char *colon = strrchr(addr, ':');
	char host[64];
	long port;
	int fd, one = 1;

	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		return anole_error_code(EINVAL, "--metrics takes HOST:PORT, not '%s'", addr);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535 || inet_pton(AF_INET, host, &a.sin_addr) != 1)
		return anole_error_code(EINVAL, "--metrics: bad address '%s'", addr);
	a.sin_port = htons((uint16_t)port);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return anole_error(errno, "cannot create metrics socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0) {
		int err = errno;

		close(fd);
		return anole_error(err, "cannot listen on %s", addr);
	}
	return fd;
}

static int start_server(struct lazyd *d, int fd, bool http, pthread_t *t)
{
	struct server *s = xmalloc(sizeof(*s));

	*s = (struct server){ d, fd, http };
	if (pthread_create(t, NULL, server_loop, s)) {
		free(s);
		return anole_error(EAGAIN, "cannot start a server thread");
	}
	return 0;
}

int lazyd_start_control(struct lazyd *d)
{
	int ret;

	d->ctl_fd = listen_unix(d);
	if (d->ctl_fd < 0)
		return d->ctl_fd;
	ret = start_server(d, d->ctl_fd, false, &d->ctl_thread);
	if (ret)
		return ret;
	d->ctl_running = true;
	if (d->opts->metrics_addr) {
		d->metrics_fd = listen_tcp(d->opts->metrics_addr);
		if (d->metrics_fd < 0)
			return d->metrics_fd;
		ret = start_server(d, d->metrics_fd, true, &d->metrics_thread);
		if (ret)
			return ret;
		d->metrics_running = true;
	}
	return 0;
}

void lazyd_stop_control(struct lazyd *d)
{
	if (d->ctl_running)
		pthread_join(d->ctl_thread, NULL);
	if (d->metrics_running)
		pthread_join(d->metrics_thread, NULL);
	d->ctl_running = d->metrics_running = false;
	if (d->ctl_fd >= 0)
		close(d->ctl_fd);
	if (d->metrics_fd >= 0)
		close(d->metrics_fd);
	d->ctl_fd = d->metrics_fd = -1;
}
