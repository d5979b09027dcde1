/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus text exposition format (version 0.0.4) writer, shared by the
 * lazy-mount daemon's --metrics and `anole monitor`. A family is its
 * # HELP and # TYPE lines followed by its samples; labels are passed as a
 * ready string (`a="x",b="y"`, "" for none) built with anole_metrics_label().
 */
#ifndef ANOLE_METRICS_H
#define ANOLE_METRICS_H
#include <stdbool.h>
#include <stdint.h>

#include "anole/strbuf.h"

#define ANOLE_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n"; type: counter, gauge, histogram. */
void anole_metrics_family(struct strbuf *sb, const char *name, const char *type,
			  const char *help);
/* Append name="value" to a label list (a comma first if it is not empty);
 * the value is escaped as the format wants (\\, \", \n). */
void anole_metrics_label(struct strbuf *labels, const char *name, const char *value);
/* A sample line: name{labels} value. */
void anole_metrics_u64(struct strbuf *sb, const char *name, const char *labels, uint64_t v);
void anole_metrics_double(struct strbuf *sb, const char *name, const char *labels, double v);
/* A family of one unlabelled-or-labelled sample: family lines and the sample. */
void anole_metrics_one_u64(struct strbuf *sb, const char *name, const char *type,
			   const char *help, const char *labels, uint64_t v);

/*
 * The samples of a log2 histogram (its family lines written before): slot
 * i counts values below 2^(i+1) units, so its bucket is le=2^(i+1)*scale;
 * the last slot holds every larger value too and becomes le="+Inf".
 * name is the base name: _bucket, _sum and _count are appended.
 */
void anole_metrics_log2_histogram(struct strbuf *sb, const char *name, const char *labels,
				  const uint64_t *slots, unsigned nslots, double scale,
				  double sum);
#endif
