// SPDX-License-Identifier: GPL-2.0
/* kw_util.c - logging, file reading and small string helpers. */
#include "util/kw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static kw_log_fn log_fn;
static void *log_arg;
static int log_level = KW_LOG_INFO;

static pthread_mutex_t once_lock = PTHREAD_MUTEX_INITIALIZER;
static char **once_keys;
static size_t once_n, once_cap;

void kw_log_set_sink(kw_log_fn fn, void *arg)
{
	log_fn = fn;
	log_arg = arg;
}

void kw_log_set_level(int level) { log_level = level; }
int kw_log_get_level(void) { return log_level; }

char *kw_log_escape(char *out, size_t len, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t o = 0;

	if (len == 0)
		return out;
	while (*s) {
		size_t n = kw_utf8_len(s);
		char e[5];
		size_t en = 0;

		/* C0 controls, DEL, C1 controls (U+0080..U+009F: 0xc2 0x80..0x9f)
		 * and bytes that are not UTF-8 are written as escapes. */
		if (*s < 0x20 || *s == 0x7f || n == 0 || (n == 2 && s[0] == 0xc2 && s[1] < 0xa0)) {
			unsigned char b = *s;

			e[en++] = '\\';
			if (b == '\n') {
				e[en++] = 'n';
			} else if (b == '\r') {
				e[en++] = 'r';
			} else if (b == '\t') {
				e[en++] = 't';
			} else {
				e[en++] = 'x';
				e[en++] = hex[b >> 4];
				e[en++] = hex[b & 15];
			}
			n = 1;
		} else {
			memcpy(e, s, n);
			en = n;
		}
		if (o + en >= len)
			break;
		memcpy(out + o, e, en);
		o += en;
		s += n;
	}
	out[o] = '\0';
	return out;
}

static void vlog(int level, const char *fmt, va_list ap)
{
	char raw[1024], msg[4 * sizeof(raw)];

	if (level > log_level)
		return;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	/* One message is one line whatever it quotes (VM names, monitor
	 * replies): nothing reaches a log or a terminal unescaped. */
	kw_log_escape(msg, sizeof(msg), raw);
	if (log_fn) {
		log_fn(level, msg, log_arg);
		return;
	}
	fprintf(stderr, "kvmwatch: %s%s\n",
		level <= KW_LOG_ERR ? "error: " : level == KW_LOG_WARN ? "warning: " : "", msg);
}

void kw_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void kw_log_once(int level, const char *key, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	pthread_mutex_lock(&once_lock);
	for (i = 0; i < once_n; i++) {
		if (!strcmp(once_keys[i], key)) {
			pthread_mutex_unlock(&once_lock);
			return;
		}
	}
	if (kw_grow((void **)&once_keys, &once_cap, once_n, sizeof(*once_keys)) == 0) {
		char *k = strdup(key);
		if (k)
			once_keys[once_n++] = k;
	}
	pthread_mutex_unlock(&once_lock);
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void kw_log_forget(const char *key)
{
	size_t i;

	pthread_mutex_lock(&once_lock);
	for (i = 0; i < once_n; i++) {
		if (!strcmp(once_keys[i], key)) {
			free(once_keys[i]);
			once_keys[i] = once_keys[--once_n];
			break;
		}
	}
	pthread_mutex_unlock(&once_lock);
}

ssize_t kw_read_file(const char *path, char *buf, size_t len)
{
	size_t got = 0;
	int fd;

	if (len == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got < len - 1) {
		ssize_t r = read(fd, buf + got, len - 1 - got);
		if (r < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			close(fd);
			buf[0] = '\0';
			return -e;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	return (ssize_t)got;
}

ssize_t kw_read_filef(char *buf, size_t len, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return kw_read_file(path, buf, len);
}

int kw_parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int kw_parse_int(const char *s, long min, long max, long *out)
{
	long v;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s || *end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int kw_parse_double(const char *s, double *out)
{
	double v;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno == ERANGE || !isfinite(v))
		return -ERANGE;
	if (end == s || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

size_t kw_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

int kw_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

size_t kw_utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) { n = 2; cp = s[0] & 0x1f; }
	else if ((s[0] & 0xf0) == 0xe0) { n = 3; cp = s[0] & 0x0f; }
	else if ((s[0] & 0xf8) == 0xf0) { n = 4; cp = s[0] & 0x07; }
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void kw_json_str(FILE *f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', f);
	while (*s) {
		size_t n;

		switch (*s) {
		case '"': fputs("\\\"", f); s++; continue;
		case '\\': fputs("\\\\", f); s++; continue;
		case '\n': fputs("\\n", f); s++; continue;
		case '\r': fputs("\\r", f); s++; continue;
		case '\t': fputs("\\t", f); s++; continue;
		}
		if (*s < 0x20 || *s == 0x7f) {
			fprintf(f, "\\u%04x", *s);
			s++;
			continue;
		}
		n = kw_utf8_len(s);
		if (n == 0) {
			/* Not UTF-8: keep the byte's value visible as U+00XX. */
			fprintf(f, "\\u%04x", *s);
			s++;
			continue;
		}
		fwrite(s, 1, n, f);
		s += n;
	}
	fputc('"', f);
}

char *kw_text_safe(char *out, size_t len, const char *str, size_t maxcols, int pad)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t o = 0, cols = 0;

	if (len == 0)
		return out;
	while (*s && cols < maxcols) {
		size_t n = (*s < 0x20 || *s == 0x7f) ? 0 : kw_utf8_len(s);

		if (n == 0) {
			if (o + 1 >= len)
				break;
			out[o++] = '?';
			s++;
		} else {
			if (o + n >= len)
				break;
			memcpy(out + o, s, n);
			o += n;
			s += n;
		}
		cols++;
	}
	while (pad && cols < maxcols && o + 1 < len) {
		out[o++] = ' ';
		cols++;
	}
	out[o] = '\0';
	return out;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int kw_sleep_until(uint64_t deadline_ns, volatile sig_atomic_t *stop)
{
	struct timespec ts = { (time_t)(deadline_ns / 1000000000ull), (long)(deadline_ns % 1000000000ull) };

	while (!*stop) {
		int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
		if (r == 0)
			return 0;
		if (r != EINTR)
			return -1;
	}
	return -1;
}

uint64_t kw_now_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t kw_now_real_ns(void) { return clock_ns(CLOCK_REALTIME); }

int kw_grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	while (ncap <= n)
		ncap *= 2;
	p = realloc(*arr, ncap * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}
