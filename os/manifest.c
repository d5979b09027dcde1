// SPDX-License-Identifier: Apache-2.0
/* The OS image manifest (JSON) and small helpers of os/. */
#include "os_internal.h"
#include "anole/error.h"
#include "anole/os_bootstate.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *const os_file_names[OS_NFILES] = { "vmlinuz", "initrd.img", "root.erofs" };

int os_version_check(const char *v)
{
	size_t n = v ? strlen(v) : 0;

	if (n == 0 || n > ANOLE_BST_VERSION_MAX)
		return anole_error_code(EINVAL, "version '%s': 1 to %d characters", v ? v : "",
					ANOLE_BST_VERSION_MAX);
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-", v[i]))
			return anole_error_code(EINVAL, "version '%s': only letters, digits and ._+- are allowed", v);
	return 0;
}

static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
	if (strlen(hex) != 2 * n)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdef", hex[2 * i]) ||
		    !strchr("0123456789abcdef", hex[2 * i + 1]))
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int os_manifest_parse(const char *text, size_t len, const char *what, struct os_manifest *m)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	int ret = -EBADMSG;

	memset(m, 0, sizeof(*m));
	if (!root)
		return anole_error_code(EBADMSG, "%s: not JSON: %s", what, jerr.text);
	const char *fmt = json_string_value(json_object_get(root, "format"));
	const char *ver = json_string_value(json_object_get(root, "version"));
	const char *krel = json_string_value(json_object_get(root, "kernel_release"));
	const char *alg = json_string_value(json_object_get(root, "digest_algorithm"));
	json_t *files = json_object_get(root, "files");

	if (!fmt || strcmp(fmt, "anole-os/1")) {
		anole_error_code(EBADMSG, "%s: format is not anole-os/1", what);
		goto out;
	}
	if (!ver || os_version_check(ver) < 0 || !krel || strlen(krel) >= sizeof(m->kernel_release) ||
	    !alg || anole_digest_from_name(alg, &m->alg) < 0 || !json_is_object(files)) {
		anole_error_code(EBADMSG, "%s: version, kernel_release, digest_algorithm or files "
				 "missing or malformed", what);
		goto out;
	}
	strcpy(m->version, ver);
	strcpy(m->kernel_release, krel);
	for (int i = 0; i < OS_NFILES; i++) {
		json_t *f = json_object_get(files, os_file_names[i]);
		json_t *sz = json_object_get(f, "size");
		const char *dg = json_string_value(json_object_get(f, "digest"));
		size_t an = strlen(alg);

		if (!json_is_integer(sz) || json_integer_value(sz) < 0 || !dg ||
		    strncmp(dg, alg, an) || dg[an] != ':' ||
		    hex_decode(dg + an + 1, m->digest[i], anole_digest_size(m->alg)) < 0) {
			anole_error_code(EBADMSG, "%s: files.%s needs a size and an %s:HEX digest",
					 what, os_file_names[i], alg);
			goto out;
		}
		m->size[i] = (uint64_t)json_integer_value(sz);
	}
	ret = 0;
out:
	json_decref(root);
	return ret;
}

int os_run(char *const argv[], const char *stdout_path)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int st, ret;
	/* the tools' warnings (mkfs.fat's "block count mismatch") are shown
	 * only when the tool fails; kept where anole_temp_dir() keeps its files
	 * (/tmp is read-only on an anole OS without a tmpfs there) */
	const char *tmpdirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
	int errfd = -1;

	for (int i = 0; i < 3 && errfd < 0; i++)
		if (tmpdirs[i] && *tmpdirs[i])
			errfd = open(tmpdirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	posix_spawn_file_actions_init(&fa);
	if (errfd >= 0)
		posix_spawn_file_actions_adddup2(&fa, errfd, 2);
	if (stdout_path)
		posix_spawn_file_actions_addopen(&fa, 1, stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	else   /* the tools' chatter is not our output */
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	ret = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret) {
		if (errfd >= 0)
			close(errfd);
		return anole_error(ret, "cannot run %s (is it installed?)", argv[0]);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			ret = anole_error(errno, "waiting for %s", argv[0]);
			goto out;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		char msg[2048];
		ssize_t n = errfd >= 0 ? pread(errfd, msg, sizeof(msg) - 1, 0) : -1;

		if (n > 0) {
			msg[n] = 0;
			anole_log(ANOLE_LOG_ERROR, "%s said: %s", argv[0], msg);
		}
		ret = anole_error_code(EIO, "%s %s failed (status %d)", argv[0], argv[1] ? argv[1] : "",
				       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
out:
	if (errfd >= 0)
		close(errfd);
	return ret;
}
