/*
 * fuzz_config.c - libFuzzer target: the configuration parser (config.c).
 *
 * Feeds the input twice:
 *   1. as a config file: written to a memfd and loaded through its
 *      /proc/self/fd/N path (no temporary files), config_load(path);
 *   2. as -o overrides: the input split on '\n', one override per line,
 *      loaded over an empty file (/dev/null).
 * Asserts, beyond "no crash, no leak":
 *   - on failure: err is non-empty, made of whole lines, and every line
 *     starts with the file path (as "path:") or with "-o": no message
 *     without its origin (STYLE: "file:line: message");
 *   - on success: err is untouched; config_print names every parameter
 *     of the table (config_param_name) in table order as "name = value";
 *   - config_print is loadable: the printed text, loaded as a config
 *     file, succeeds and prints the same parameters and values again
 *     (authgate -p output can be pasted back into authgate.conf).
 */
#include <sys/mman.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "config.h"
#include "fuzz_common.h"

#define AG_FUZZ_MAX_OVERRIDES 256

static int conf_fd = -1, print_fd = -1;
static char conf_path[64], print_path[64];

/* fuzz_fill - make the memfd hold exactly these bytes */
static void
fuzz_fill(int fd, const void *data, size_t len)
{
	if (ftruncate(fd, 0) == -1 ||
	    (len > 0 && pwrite(fd, data, len, 0) != (ssize_t)len)) {
		perror("memfd write");
		abort();
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	conf_fd = fuzz_memfd("fuzz.conf", conf_path, sizeof(conf_path));
	print_fd = fuzz_memfd("fuzz.print", print_path, sizeof(print_path));
	return 0;
}

/* check_errors - every line of err starts with one of the origins */
static void
check_errors(const struct buf *err, const char *path)
{
	size_t plen = strlen(path), off = 0;

	FUZZ_CHECK(err->len > 0, "config_load failed without a message");
	FUZZ_CHECK(err->data[err->len - 1] == '\n',
	    "error text does not end in a newline: '%s'",
	    fuzz_escape(err->data, err->len));
	while (off < err->len) {
		const char *line = err->data + off;
		const char *nl = memchr(line, '\n', err->len - off);
		size_t len = nl ? (size_t)(nl - line) : err->len - off;
		int from_file = len > plen && memcmp(line, path, plen) == 0 &&
		    line[plen] == ':';
		int from_o = len >= 2 && memcmp(line, "-o", 2) == 0;

		FUZZ_CHECK(from_file || from_o,
		    "error line without its origin (want '%s:' or '-o'): '%s'",
		    path, fuzz_escape(line, len));
		off += len + 1;
	}
}

/* print_text - config_print into a malloc'd string */
static char *
print_text(const struct config *cfg, size_t *lenp)
{
	char *text = NULL;
	FILE *fp = open_memstream(&text, lenp);

	if (fp == NULL)
		abort();
	config_print(cfg, fp);
	if (fclose(fp) != 0)
		abort();
	return text;
}

/* print_body - the printed text after its first (comment) line */
static const char *
print_body(const char *text)
{
	const char *nl = strchr(text, '\n');

	FUZZ_CHECK(text[0] == '#' && nl != NULL,
	    "config_print does not start with a comment line: '%s'",
	    fuzz_escape(text, strlen(text)));
	return nl + 1;
}

/* check_print - every parameter, in table order, as "name = value" */
static void
check_print(const struct config *cfg)
{
	struct buf err = BUF_INIT;
	struct config *again;
	const char *p;
	char *text, *text2;
	size_t len, len2, i;
	FILE *null;

	/* What -p does, to a real FILE the way the daemon does it. */
	if ((null = fopen("/dev/null", "w")) != NULL) {
		config_print(cfg, null);
		fclose(null);
	}
	text = print_text(cfg, &len);
	p = print_body(text);
	for (i = 0; i < config_nparams(); i++) {
		const char *name = config_param_name(i);
		size_t nlen = strlen(name);
		const char *nl;

		FUZZ_CHECK(strncmp(p, name, nlen) == 0 &&
			strncmp(p + nlen, " = ", 3) == 0,
		    "config_print line %zu: want '%s = ...', got '%s'", i + 2,
		    name, fuzz_escape(p, strcspn(p, "\n")));
		nl = strchr(p, '\n');
		FUZZ_CHECK(
		    nl != NULL, "config_print: '%s' line unterminated", name);
		p = nl + 1;
	}
	FUZZ_CHECK(*p == '\0', "config_print: extra text '%s'",
	    fuzz_escape(p, strlen(p)));

	/* The printed settings load back to the same settings. */
	fuzz_fill(print_fd, text, len);
	again = config_load(print_path, NULL, 0, &err);
	FUZZ_CHECK(again != NULL,
	    "config_print output does not load back:\n%s\nerrors:\n%s",
	    fuzz_escape(text, len), fuzz_escape(err.data, err.len));
	text2 = print_text(again, &len2);
	FUZZ_CHECK(strcmp(print_body(text), print_body(text2)) == 0,
	    "config_print output changes when loaded back:\nfirst: %s",
	    fuzz_escape(text, len));
	config_free(again);
	buf_release(&err);
	free(text);
	free(text2);
}

/* run_file - the input as a config file */
static void
run_file(const uint8_t *data, size_t size)
{
	struct buf err = BUF_INIT;
	struct config *cfg;

	fuzz_fill(conf_fd, data, size);
	if ((cfg = config_load(conf_path, NULL, 0, &err)) != NULL) {
		FUZZ_CHECK(err.len == 0, "success with errors: '%s'",
		    fuzz_escape(err.data, err.len));
		check_print(cfg);
		config_free(cfg);
	} else
		check_errors(&err, conf_path);
	buf_release(&err);
}

/* run_overrides - the input as -o lines */
static void
run_overrides(const uint8_t *data, size_t size)
{
	char *ov[AG_FUZZ_MAX_OVERRIDES];
	struct buf err = BUF_INIT;
	struct config *cfg;
	size_t n = 0, off = 0, i;

	while (off < size && n < AG_FUZZ_MAX_OVERRIDES) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) : size - off;

		ov[n++] = strndup((const char *)data + off, len);
		off += len + 1;
	}
	if ((cfg = config_load(
		 "/dev/null", (const char *const *)ov, n, &err)) != NULL) {
		FUZZ_CHECK(err.len == 0, "success with errors: '%s'",
		    fuzz_escape(err.data, err.len));
		check_print(cfg);
		config_free(cfg);
	} else
		check_errors(&err, "/dev/null");
	for (i = 0; i < n; i++)
		free(ov[i]);
	buf_release(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_file(data, size);
	run_overrides(data, size);
	return 0;
}
