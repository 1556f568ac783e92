// SPDX-License-Identifier: GPL-2.0
/* kwqmptest - drives common/kvm/kw_json.c, the QMP part of kw_parse_qemu_cmdline
 * and the QMP client for tests/test_qmp.py.
 *
 *   kwqmptest json [--stream] [--max-depth N] [--max-tokens N] < input
 *       parse stdin; print each value re-serialised (compact, keys in order,
 *       numbers as written) or "error: <code>: <why>" (exit 1); --stream:
 *       values one after another, "incomplete" (exit 3) when input ends in one
 *   kwqmptest num JSON-NUMBER      print "u64 V|ERR i64 V|ERR"
 *   kwqmptest cmdline ARG...       parse ARGs as a QEMU command line; print
 *                                  {"qemu":..,"name":..,"pve_id":..,"qmp":..}
 *   kwqmptest query PATH PID CMD [ARGS-JSON]
 *                                  one QMP session: print the reply's return
 *                                  value, or "status <name>: <why>" (exit 1) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvm/kw_json.h"
#include "kvm/kw_qmp.h"
#include "util/kw_util.h"
#include "core/kw_vm.h"

static const char *code_name(long r)
{
	switch (r) {
	case -EAGAIN: return "EAGAIN";
	case -EINVAL: return "EINVAL";
	case -E2BIG: return "E2BIG";
	case -ENOMEM: return "ENOMEM";
	case -ERANGE: return "ERANGE";
	default: return "?";
	}
}

static int dump(const struct kw_json *j, int tok, FILE *f)
{
	const struct kw_json_tok *t = &j->t[tok];
	int e, k, r;

	switch (t->type) {
	case KW_JSON_NULL: fputs("null", f); return 0;
	case KW_JSON_TRUE: fputs("true", f); return 0;
	case KW_JSON_FALSE: fputs("false", f); return 0;
	case KW_JSON_NUMBER: fprintf(f, "%.*s", (int)t->len, j->text + t->start); return 0;
	case KW_JSON_STRING: {
		size_t len = (size_t)t->len * 4 + 1; /* decoding never grows a string */
		char *s = malloc(len);
		ssize_t n;

		if (!s)
			return -ENOMEM;
		n = kw_json_strcpy(j, tok, s, len);
		if (n < 0) {
			free(s);
			return (int)n;
		}
		kw_json_str(f, s);
		free(s);
		return 0;
	}
	default:
		fputc(t->type == KW_JSON_ARRAY ? '[' : '{', f);
		for (k = 0, e = kw_json_first(j, tok); k < (int)t->size; k++) {
			if (k)
				fputc(',', f);
			if (t->type == KW_JSON_OBJECT) {
				if ((r = dump(j, e, f)))
					return r;
				fputc(':', f);
				e++;
			}
			if ((r = dump(j, e, f)))
				return r;
			e = kw_json_next(j, e);
		}
		fputc(t->type == KW_JSON_ARRAY ? ']' : '}', f);
		return 0;
	}
}

static char *read_all(FILE *in, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	while (buf) {
		size_t r = fread(buf + n, 1, cap - n, in);

		n += r;
		if (r == 0)
			break;
		if (n == cap) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	*len = n;
	return buf;
}

static int cmd_json(int argc, char **argv)
{
	size_t max_tokens = KW_QMP_MAX_TOKENS, len, off = 0;
	unsigned depth = KW_QMP_MAX_DEPTH;
	int stream = 0, i, r;
	struct kw_json j;
	char *buf;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--stream"))
			stream = 1;
		else if (!strcmp(argv[i], "--max-depth") && i + 1 < argc)
			depth = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max-tokens") && i + 1 < argc)
			max_tokens = (size_t)atol(argv[++i]);
		else
			return 2;
	}
	if (!(buf = read_all(stdin, &len)))
		return 2;
	kw_json_init(&j, max_tokens, depth);
	if (!stream) {
		r = kw_json_parse_all(&j, buf, len);
		if (r == 0 && (r = dump(&j, 0, stdout)) == 0)
			fputc('\n', stdout);
	} else {
		for (r = 0; off < len && r == 0;) {
			ssize_t n = kw_json_parse(&j, buf + off, len - off);

			if (n < 0) {
				r = (int)n;
				break;
			}
			if ((r = dump(&j, 0, stdout)) == 0)
				fputc('\n', stdout);
			off += (size_t)n;
		}
	}
	if (r == -EAGAIN) {
		printf("incomplete: %s\n", j.err);
		r = 3;
	} else if (r) {
		printf("error: %s: %s\n", code_name(r), j.err[0] ? j.err : "string holds U+0000");
		r = 1;
	}
	kw_json_free(&j);
	free(buf);
	return r;
}

static int cmd_num(const char *text)
{
	struct kw_json j;
	uint64_t u;
	int64_t s;
	int r;

	kw_json_init(&j, 16, 4);
	if (kw_json_parse_all(&j, text, strlen(text))) {
		printf("error: %s\n", j.err);
		kw_json_free(&j);
		return 1;
	}
	if ((r = kw_json_u64(&j, 0, &u)))
		printf("u64 %s", code_name(r));
	else
		printf("u64 %llu", (unsigned long long)u);
	if ((r = kw_json_i64(&j, 0, &s)))
		printf(" i64 %s\n", code_name(r));
	else
		printf(" i64 %lld\n", (long long)s);
	kw_json_free(&j);
	return 0;
}

static int cmd_cmdline(int argc, char **argv)
{
	struct kw_vm vm;
	size_t len = 0, n;
	char *buf;
	int i, q;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (!(buf = malloc(len + 1)))
		return 2;
	for (len = 0, i = 0; i < argc; i++) {
		n = strlen(argv[i]) + 1;
		memcpy(buf + len, argv[i], n);
		len += n;
	}
	memset(&vm, 0, sizeof(vm));
	vm.pve_id = -1;
	q = kw_parse_qemu_cmdline(buf, len, &vm);
	printf("{\"qemu\":%s,\"name\":", q ? "true" : "false");
	kw_json_str(stdout, vm.name);
	printf(",\"pve_id\":%d,\"qmp\":", vm.pve_id);
	kw_json_str(stdout, vm.qmp);
	printf("}\n");
	kw_vm_free(&vm);
	free(buf);
	return 0;
}

static int cmd_query(int argc, char **argv)
{
	static const char *const names[] = { "ok", "busy", "nosock", "denied", "notours", "timeout", "proto",
					     "error", "nomem" };
	struct kw_qmp q;
	int r;

	if (argc < 3)
		return 2;
	r = kw_qmp_open(&q, "/proc", argv[0], (pid_t)atoi(argv[1]), KW_QMP_GREETING_MS, KW_QMP_SESSION_MS);
	if (r == KW_QMP_OK) {
		r = kw_qmp_cmd(&q, argv[2], argc > 3 ? argv[3] : NULL);
		if (r == KW_QMP_OK) {
			dump(&q.j, q.ret, stdout);
			fputc('\n', stdout);
		}
		kw_qmp_close(&q);
	}
	if (r != KW_QMP_OK) {
		printf("status %s: %s\n", r >= 0 && r < (int)KW_ARRAY_SIZE(names) ? names[r] : "?", q.err);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "json"))
		return cmd_json(argc - 2, argv + 2);
	if (argc == 3 && !strcmp(argv[1], "num"))
		return cmd_num(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "cmdline"))
		return cmd_cmdline(argc - 2, argv + 2);
	if (argc == 3 && !strcmp(argv[1], "normalize")) {
		char out[4096];
		int r = kw_qmp_normalize(out, sizeof(out), argv[2]);

		printf("%s\n", r ? strerror(-r) : out);
		return r ? 1 : 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "query"))
		return cmd_query(argc - 2, argv + 2);
	fprintf(stderr, "usage: kwqmptest json|num|cmdline|normalize|query ...\n");
	return 2;
}
