/* SPDX-License-Identifier: Apache-2.0 */
/* The console's web page, embedded at build time (console/web/embed.py):
 * the server looks a request path up here and serves the bytes as they are,
 * so the binary needs no installed files and a request can only ever get one
 * of these assets (no file system path is built from the URL). */
#ifndef ANOLE_CONSOLE_WEB_ASSETS_H
#define ANOLE_CONSOLE_WEB_ASSETS_H

#include <stddef.h>

struct console_web_asset {
	const char *path;         /* "index.html", "app.js", ... (no leading '/') */
	const char *content_type; /* for Content-Type */
	const char *etag;         /* quoted strong ETag: a digest of the bytes */
	const unsigned char *data;
	size_t size;
};

/* The asset at URL path PATH ("/", "/app.js"; leading slashes ignored, ""
 * and "/" are index.html); NULL if there is none. Query strings must be
 * stripped by the caller. */
const struct console_web_asset *console_web_asset(const char *path);

/* The I-th asset, NULL past the end (for listings and tests). */
const struct console_web_asset *console_web_asset_at(size_t i);

#endif
