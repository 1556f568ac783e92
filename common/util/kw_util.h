// SPDX-License-Identifier: GPL-2.0
/* kw_util.h - logging, file reading and small string helpers shared by all of kvmwatch. */
#ifndef KW_UTIL_H
#define KW_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>

enum kw_log_level { KW_LOG_ERR = 3, KW_LOG_WARN = 4, KW_LOG_INFO = 6, KW_LOG_DEBUG = 7 };

typedef void (*kw_log_fn)(int level, const char *msg, void *arg);

/* Route library messages (default: stderr with a "kvmwatch: " prefix). */
void kw_log_set_sink(kw_log_fn fn, void *arg);
void kw_log_set_level(int level);
int kw_log_get_level(void);
void kw_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log only the first time `key` is seen (until kw_log_forget(key)): for
 * "source unavailable" style messages that would otherwise repeat each cycle. */
void kw_log_once(int level, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void kw_log_forget(const char *key);

#define kw_err(...)   kw_log(KW_LOG_ERR, __VA_ARGS__)
#define kw_warn(...)  kw_log(KW_LOG_WARN, __VA_ARGS__)
#define kw_info(...)  kw_log(KW_LOG_INFO, __VA_ARGS__)
#define kw_debug(...) kw_log(KW_LOG_DEBUG, __VA_ARGS__)

/* str for a log line: newline, CR and tab as \n \r \t, other control
 * characters (C0, DEL, C1) and bytes that are not UTF-8 as \xHH, so a
 * message quoting hostile text stays one line and sends no terminal escape.
 * kw_log does this to every message.  out (len bytes; 4 per input byte is
 * always enough) is NUL-terminated.  Returns out. */
char *kw_log_escape(char *out, size_t len, const char *str);

/* Read a whole (small) file into buf, NUL-terminated.  Returns the number of
 * bytes read, or -errno.  A file longer than len-1 is truncated (not an error). */
ssize_t kw_read_file(const char *path, char *buf, size_t len);
/* Same, path built with printf formatting. */
ssize_t kw_read_filef(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Strict number parsing: whole string must be a number. Return 0 or -EINVAL/-ERANGE. */
int kw_parse_u64(const char *s, uint64_t *out);
int kw_parse_int(const char *s, long min, long max, long *out);
int kw_parse_double(const char *s, double *out);

/* Copy with truncation, always NUL-terminates, returns strlen(src). */
size_t kw_strlcpy(char *dst, const char *src, size_t size);
/* Does s start with prefix? */
int kw_startswith(const char *s, const char *prefix);

/* Write s as a JSON string literal (quotes and escapes; invalid UTF-8 bytes
 * become \u00XX so the output is always valid JSON). */
void kw_json_str(FILE *f, const char *s);

/* Length of the valid UTF-8 sequence starting at s (1-4), or 0 if invalid
 * (overlong, surrogate, beyond U+10FFFF, truncated). */
size_t kw_utf8_len(const unsigned char *s);

/* Sleep until an absolute CLOCK_MONOTONIC deadline (drift-free ticks).
 * Returns 0 at the deadline, -1 as soon as *stop is set by a signal handler. */
int kw_sleep_until(uint64_t deadline_ns, volatile sig_atomic_t *stop);

/* s as one field of a text table or line: valid UTF-8 kept, control
 * characters, DEL and bytes that are not UTF-8 become '?'; at most maxcols
 * characters (never a split sequence), padded with spaces to maxcols when
 * pad (printf's %-Ns pads bytes, not characters).  out (len bytes, 4 per
 * column is always enough) is NUL-terminated.  Returns out. */
char *kw_text_safe(char *out, size_t len, const char *s, size_t maxcols, int pad);

/* Monotonic / realtime clocks in nanoseconds. */
uint64_t kw_now_mono_ns(void);
uint64_t kw_now_real_ns(void);

/* Growable array helper: ensure *arr has room for n+1 elements of size sz. Returns 0 or -ENOMEM. */
int kw_grow(void **arr, size_t *cap, size_t n, size_t sz);

#define KW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
