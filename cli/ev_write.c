// SPDX-License-Identifier: GPL-2.0
/* ev_write.c - the event modes' one writer: each field once, for text and
 * JSON (see events.h). */
#include "events.h"
#include "util/kw_util.h"

static void key(struct ew *w, const char *k)
{
	fprintf(w->f, "%s\"%s\":", w->first ? "" : ",", k);
	w->first = 0;
}

void ew_u(struct ew *w, const char *k, const char *tfmt, unsigned long long v)
{
	if (w->json && k) {
		key(w, k);
		fprintf(w->f, "%llu", v);
	} else if (!w->json && tfmt) {
		fprintf(w->f, tfmt, v);
	}
}

void ew_i(struct ew *w, const char *k, const char *tfmt, long long v)
{
	if (w->json && k) {
		key(w, k);
		fprintf(w->f, "%lld", v);
	} else if (!w->json && tfmt) {
		fprintf(w->f, tfmt, v);
	}
}

void ew_s(struct ew *w, const char *k, const char *tfmt, const char *s)
{
	if (w->json && k) {
		key(w, k);
		kw_json_str(w->f, s);
	} else if (!w->json && tfmt) {
		fprintf(w->f, tfmt, s);
	}
}

void ew_b(struct ew *w, const char *k, const char *tfmt, int b, const char *t, const char *f)
{
	if (w->json && k) {
		key(w, k);
		fputs(b ? "true" : "false", w->f);
	} else if (!w->json && tfmt) {
		fprintf(w->f, tfmt, b ? t : f);
	}
}

void ew_f(struct ew *w, const char *k, const char *tfmt, double v, int prec)
{
	if (w->json && k) {
		key(w, k);
		fprintf(w->f, "%.*f", prec, v);
	} else if (!w->json && tfmt) {
		fprintf(w->f, tfmt, v);
	}
}

void ew_null(struct ew *w, const char *k, const char *text)
{
	if (w->json && k) {
		key(w, k);
		fputs("null", w->f);
	} else if (!w->json && text) {
		fputs(text, w->f);
	}
}

void ew_text(struct ew *w, const char *s)
{
	if (!w->json)
		fputs(s, w->f);
}

void ew_open(struct ew *w, const char *k, char bracket)
{
	if (!w->json)
		return;
	if (k)
		key(w, k);
	else if (!w->first)
		fputc(',', w->f);
	fputc(bracket, w->f);
	w->first = 1;
}

void ew_close(struct ew *w, char bracket)
{
	if (!w->json)
		return;
	fputc(bracket == '[' ? ']' : bracket == '{' ? '}' : bracket, w->f);
	w->first = 0;
}

void ew_elem(struct ew *w, size_t i)
{
	if (!w->json)
		return;
	fputs(i ? ",{" : "{", w->f);
	w->first = 1;
}

void ew_elem_end(struct ew *w)
{
	if (!w->json)
		return;
	fputc('}', w->f);
	w->first = 0;
}

void ew_latency(struct ew *w, const char *jkey, const char *tkey, int timed, uint64_t ns)
{
	if (w->json) {
		key(w, jkey);
		if (timed)
			fprintf(w->f, "%llu", (unsigned long long)ns);
		else
			fputs("null", w->f);
	} else if (timed) {
		fprintf(w->f, " %s=%.3fus", tkey, (double)ns / 1e3);
	} else {
		fprintf(w->f, " %s=-", tkey);
	}
}

void ew_eol(struct ew *w)
{
	fputs(w->json ? "}\n" : "\n", w->f);
	w->first = 0;
}
