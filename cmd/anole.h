/* SPDX-License-Identifier: Apache-2.0 */
#ifndef ANOLE_CMD_H
#define ANOLE_CMD_H
#include "anole/strbuf.h"

struct anole_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Dispatch argv[1] among cmds; print usage on help or unknown verbs. */
int anole_dispatch(const char *group, const struct anole_cmd *cmds, int argc, char **argv);

int cmd_image(int argc, char **argv);
int cmd_blob(int argc, char **argv);
int cmd_diag(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_qos(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_os(int argc, char **argv);
/* cmd/image_mount.c: the lazy-mount verbs of `anole image` */
int cmd_image_mount(int argc, char **argv);
int cmd_image_umount(int argc, char **argv);
int cmd_image_stats(int argc, char **argv);
int cmd_image_cache(int argc, char **argv);
/* cmd/image_sign.c: signatures */
int cmd_image_sign(int argc, char **argv);
int cmd_image_verify(int argc, char **argv);
int cmd_image_keygen(int argc, char **argv);
#endif
