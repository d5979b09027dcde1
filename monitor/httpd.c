// SPDX-License-Identifier: Apache-2.0
/*
 * A small HTTP/1.x server for /metrics: non-blocking sockets driven by the
 * agent's poll loop, so scrapes run concurrently without threads and a
 * slow client never holds up sampling. Each connection reads one request
 * (at most 4 KiB, 10 s), gets the latest sample (a shared, reference-counted
 * body) and is closed; Prometheus reconnects for each scrape anyway.
 */
#include "monitor.h"

#include "anole/error.h"
#include "anole/metrics.h"
#include "anole/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 4096
#define CLIENT_TIMEOUT_MS 10000

struct client {
	int fd;                     /* -1: free slot */
	bool writing;
	int64_t deadline_ms;
	size_t inlen;
	char in[REQUEST_MAX];
	char head[512];             /* status line, headers (and a short error body) */
	size_t headlen, headoff;
	struct monitor_body *body;  /* NULL unless a 200 GET */
	size_t bodyoff;
};

struct monitor_httpd {
	int lfd;
	struct client clients[MONITOR_HTTPD_MAX_CLIENTS];
	int pfd_client[MONITOR_HTTPD_MAX_FDS]; /* pollfd index -> client, -1: listener */
	struct monitor_body *body;
	struct monitor_httpd_stats st;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct monitor_body *monitor_body_new(const struct strbuf *sb)
{
	struct monitor_body *b = xmalloc(sizeof(*b) + sb->len);

	b->refs = 1;
	b->len = sb->len;
	memcpy(b->data, sb->buf, sb->len);
	return b;
}

void monitor_body_put(struct monitor_body *b)
{
	if (b && !--b->refs)
		free(b);
}

/* HOST:PORT with an IPv4 host, or [IPv6]:PORT */
static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *colon = strrchr(addr, ':');
	char host[64], *end;
	size_t hlen;
	long port;

	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - addr);
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		host[hlen - 1] = '\0';
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*a);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -EINVAL;
	*len = sizeof(*a);
	return 0;
}

int monitor_httpd_open(struct monitor_httpd **out, const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	struct monitor_httpd *h;
	int fd, one = 1;

	if (parse_addr(addr, &ss, &slen))
		return anole_error_code(-EINVAL, "--listen takes HOST:PORT (IPv4) or [ADDR]:PORT, "
						 "not '%s'", addr);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return anole_error(errno, "cannot create a socket for %s", addr);
	/* a restart must not wait for the old connections' TIME_WAIT */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, slen) < 0 || listen(fd, 64) < 0) {
		int err = errno;

		close(fd);
		return anole_error(err, "cannot listen on %s", addr);
	}
	h = xcalloc(1, sizeof(*h));
	h->lfd = fd;
	for (int i = 0; i < MONITOR_HTTPD_MAX_CLIENTS; i++)
		h->clients[i].fd = -1;
	*out = h;
	return 0;
}

static void client_close(struct client *c)
{
	close(c->fd);
	c->fd = -1;
	monitor_body_put(c->body);
	c->body = NULL;
}

void monitor_httpd_free(struct monitor_httpd *h)
{
	if (!h)
		return;
	for (int i = 0; i < MONITOR_HTTPD_MAX_CLIENTS; i++)
		if (h->clients[i].fd >= 0)
			client_close(&h->clients[i]);
	close(h->lfd);
	monitor_body_put(h->body);
	free(h);
}

void monitor_httpd_set_body(struct monitor_httpd *h, struct monitor_body *b)
{
	b->refs++;
	monitor_body_put(h->body);
	h->body = b;
}

void monitor_httpd_stats(const struct monitor_httpd *h, struct monitor_httpd_stats *st)
{
	*st = h->st;
}

int monitor_httpd_pollfds(struct monitor_httpd *h, struct pollfd *pfd, int *timeout_ms)
{
	int64_t now = now_ms();
	bool room = false;
	int n = 0;

	for (int i = 0; i < MONITOR_HTTPD_MAX_CLIENTS; i++) {
		struct client *c = &h->clients[i];
		int64_t left;

		if (c->fd < 0) {
			room = true;
			continue;
		}
		left = c->deadline_ms - now;
		if (left <= 0) { /* too slow: drop it rather than hold a slot */
			client_close(c);
			room = true;
			continue;
		}
		if (left < *timeout_ms || *timeout_ms < 0)
			*timeout_ms = (int)left;
		pfd[n] = (struct pollfd){ c->fd, c->writing ? POLLOUT : POLLIN, 0 };
		h->pfd_client[n++] = i;
	}
	/* when every slot is taken, new connections wait in the backlog */
	if (room) {
		pfd[n] = (struct pollfd){ h->lfd, POLLIN, 0 };
		h->pfd_client[n++] = -1;
	}
	return n;
}

static void respond(struct monitor_httpd *h, struct client *c, int status, const char *reason,
		    bool head_only, const char *extra)
{
	const char *text = "";
	int n;

	if (status == 200) {
		c->body = h->body;
		if (c->body)
			c->body->refs++;
	} else {
		text = status == 404 ? "not found: metrics are on /metrics\n" : reason;
	}
	n = snprintf(c->head, sizeof(c->head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
		     "Connection: close\r\n\r\n%s%s",
		     status, reason, status == 200 ? ANOLE_METRICS_CONTENT_TYPE : "text/plain",
		     status == 200 ? (c->body ? c->body->len : 0) : strlen(text) + (status != 404),
		     extra ? extra : "", head_only ? "" : text,
		     head_only || status == 200 || status == 404 ? "" : "\n");
	c->headlen = n > 0 && (size_t)n < sizeof(c->head) ? (size_t)n : 0;
	c->headoff = c->bodyoff = 0;
	if (head_only) {
		monitor_body_put(c->body);
		c->body = NULL;
	}
	c->writing = true;
	h->st.requests++;
	if (status == 404)
		h->st.not_found++;
	else if (status != 200)
		h->st.bad++;
}

/* A complete request head is in c->in: decide the answer. */
static void handle_request(struct monitor_httpd *h, struct client *c)
{
	char method[8], target[1024], version[16];
	bool head_only;
	char *q;

	c->in[c->inlen < REQUEST_MAX ? c->inlen : REQUEST_MAX - 1] = '\0';
	if (sscanf(c->in, "%7s %1023s %15s", method, target, version) != 3 ||
	    strncmp(version, "HTTP/1.", 7)) {
		respond(h, c, 400, "Bad Request", false, NULL);
		return;
	}
	head_only = !strcmp(method, "HEAD");
	if (strcmp(method, "GET") && !head_only) {
		respond(h, c, 405, "Method Not Allowed", false, "Allow: GET, HEAD\r\n");
		return;
	}
	if ((q = strchr(target, '?')))
		*q = '\0';
	if (strcmp(target, "/metrics"))
		respond(h, c, 404, "Not Found", head_only, NULL);
	else
		respond(h, c, 200, "OK", head_only, NULL);
}

static void client_write(struct client *c)
{
	for (;;) {
		const char *p;
		size_t left;
		ssize_t w;

		if (c->headoff < c->headlen) {
			p = c->head + c->headoff;
			left = c->headlen - c->headoff;
		} else if (c->body && c->bodyoff < c->body->len) {
			p = c->body->data + c->bodyoff;
			left = c->body->len - c->bodyoff;
		} else {
			shutdown(c->fd, SHUT_WR);
			client_close(c);
			return;
		}
		w = send(c->fd, p, left, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				client_close(c);
			return;
		}
		if (c->headoff < c->headlen)
			c->headoff += (size_t)w;
		else
			c->bodyoff += (size_t)w;
	}
}

static void client_read(struct monitor_httpd *h, struct client *c)
{
	ssize_t r = recv(c->fd, c->in + c->inlen, REQUEST_MAX - 1 - c->inlen, 0);

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		client_close(c);
		return;
	}
	c->inlen += (size_t)r;
	c->in[c->inlen] = '\0';
	if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n"))
		handle_request(h, c);
	else if (c->inlen >= REQUEST_MAX - 1)
		respond(h, c, 431, "Request Header Fields Too Large", false, NULL);
	if (c->writing)
		client_write(c); /* most answers fit the socket buffer: no extra poll round */
}

static void accept_clients(struct monitor_httpd *h)
{
	for (int i = 0; i < MONITOR_HTTPD_MAX_CLIENTS; i++) {
		struct client *c = &h->clients[i];
		int fd;

		if (c->fd >= 0)
			continue;
		fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				anole_debug("monitor: accept: %s", strerror(errno));
			return;
		}
		c->fd = fd;
		c->writing = false;
		c->inlen = 0;
		c->deadline_ms = now_ms() + CLIENT_TIMEOUT_MS;
	}
}

void monitor_httpd_handle(struct monitor_httpd *h, const struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++) {
		struct client *c;

		if (!pfd[i].revents)
			continue;
		if (h->pfd_client[i] < 0) {
			accept_clients(h);
			continue;
		}
		c = &h->clients[h->pfd_client[i]];
		if (c->fd != pfd[i].fd)
			continue;
		if (c->writing)
			client_write(c);
		else if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
			client_read(h, c);
	}
}
