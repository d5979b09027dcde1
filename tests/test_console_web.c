// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the console's embedded page (console/web/embed.py): every
 * asset the page loads is there with its type, "/" is index.html, and no
 * path outside the table (traversal, absolute, empty segments) finds anything.
 */
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "web_assets.h"

static const struct console_web_asset *get(const char *path)
{
	return console_web_asset(path);
}

int main(void)
{
	const struct console_web_asset *index = get("/");
	CHECK(index && !strcmp(index->path, "index.html"), "/ is index.html");
	CHECK(index == get("/index.html") && index == get(""), "index.html by name and by empty path");
	CHECK(index && !strncmp(index->content_type, "text/html", 9), "index.html is text/html");
	/* every script and style the page names is embedded */
	const char *wanted[] = { "app.js", "app.css", "flame.js", "chart.min.js" };
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		const struct console_web_asset *a = get(wanted[i]);
		CHECK(a && a->size > 100, "%s is embedded (%zu bytes)", wanted[i], a ? a->size : 0);
		/* index.html names the scripts and styles; app.js loads Chart.js */
		const struct console_web_asset *by = strcmp(wanted[i], "chart.min.js") ? index : get("app.js");
		CHECK(by && memmem(by->data, by->size, wanted[i], strlen(wanted[i])),
		      "%s loads %s", by ? by->path : "?", wanted[i]);
		CHECK(a && a->data[a->size] == 0, "%s is NUL-terminated past its size", wanted[i]);
		CHECK(a && a->etag[0] == '"' && strlen(a->etag) == 34, "%s has a quoted ETag", wanted[i]);
	}
	const struct console_web_asset *chart = get("chart.min.js");
	CHECK(chart && memmem(chart->data, chart->size, "Chart.js v", 10), "chart.min.js is Chart.js");
	CHECK(get("/app.js") && !strncmp(get("/app.js")->content_type, "text/javascript", 15),
	      "app.js is text/javascript");
	/* nothing but the table: no file system path is ever built */
	const char *absent[] = { "../app.js", "/../../etc/passwd", "web/app.js", "app.js/",
				 "APP.JS", "app.js?x=1", "./app.js", "%2e%2e/app.js", "embed.py",
				 "web_assets.h" };
	for (size_t i = 0; i < sizeof(absent) / sizeof(absent[0]); i++)
		CHECK(get(absent[i]) == NULL, "'%s' finds nothing", absent[i]);
	CHECK(get(NULL) == NULL, "NULL finds nothing");
	size_t n = 0;
	while (console_web_asset_at(n))
		n++;
	CHECK(n == 5, "5 assets embedded (%zu)", n);
	printf("1..%d\n", ntests);
	return nfailed ? 1 : 0;
}
