// SPDX-License-Identifier: GPL-2.0
/* sink.c - the reports' outputs besides stdout (see sink.h). */
#include "sink.h"
#include "util/kw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

volatile sig_atomic_t kw_sink_reopen;

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000

static int open_file(struct kw_sink *s)
{
	s->fd = open(s->target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	return s->fd < 0 ? -errno : 0;
}

int kw_hostport(const char *s, int socktype, int passive, struct sockaddr_storage *ss, socklen_t *sl, char *err,
		size_t errlen)
{
	char host[256];
	const char *port = strrchr(s, ':');
	struct addrinfo hints = { .ai_socktype = socktype, .ai_flags = AI_NUMERICSERV }, *ai = NULL;
	long p;
	int r;

	if (!port || kw_parse_int(port + 1, 1, 65535, &p) || (size_t)(port - s) >= sizeof(host) ||
	    (!passive && port == s)) {
		snprintf(err, errlen, "invalid address '%s' (HOST:PORT, [IPV6]:PORT%s)", s, passive ? " or :PORT" : "");
		return -EINVAL;
	}
	memcpy(host, s, (size_t)(port - s));
	host[port - s] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	if (passive)
		hints.ai_flags |= AI_PASSIVE | AI_NUMERICHOST;
	r = getaddrinfo(host[0] ? host : NULL, port + 1, &hints, &ai);
	if (r || !ai) {
		snprintf(err, errlen, "cannot use address '%s': %s%s", s, gai_strerror(r), passive ? " (a numeric address)" : "");
		return -EINVAL;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void tcp_down(struct kw_sink *s, const char *why)
{
	if (s->mid_record) {
		/* the peer got part of a record: the next one gets none of it */
		char *nl = memchr(s->buf, '\n', s->len);
		size_t cut = nl ? (size_t)(nl - s->buf) + 1 : s->len;

		memmove(s->buf, s->buf + cut, s->len - cut);
		s->len -= cut;
		s->mid_record = 0;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->connected)
		kw_warn("output %s: %s; reconnecting", s->target, why);
	s->connected = s->connecting = 0;
	s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	s->next_try_ns = kw_now_mono_ns() + (uint64_t)s->backoff_ms * 1000000ull;
}

/* Connect without waiting: EINPROGRESS is checked on the next flush. */
static void tcp_try(struct kw_sink *s)
{
	if (s->connected || s->connecting || kw_now_mono_ns() < s->next_try_ns)
		return;
	s->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		tcp_down(s, strerror(errno));
		return;
	}
	if (connect(s->fd, (struct sockaddr *)&s->addr, s->addrlen) == 0)
		s->connected = 1;
	else if (errno == EINPROGRESS)
		s->connecting = 1;
	else
		tcp_down(s, strerror(errno));
}

/* Send what is buffered (TCP), without blocking. */
static void kw_sink_flush(struct kw_sink *s)
{
	if (s->kind != KW_SINK_TCP)
		return;
	tcp_try(s);
	if (s->connecting) {
		struct pollfd p = { s->fd, POLLOUT, 0 };
		int e = 0;
		socklen_t el = sizeof(e);

		if (poll(&p, 1, 0) <= 0)
			return;
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el);
		s->connecting = 0;
		if (e) {
			tcp_down(s, strerror(e));
			return;
		}
		s->connected = 1;
		s->backoff_ms = 0;
		kw_info("output %s: connected", s->target);
	}
	while (s->connected && s->len) {
		ssize_t n = send(s->fd, s->buf, s->len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return; /* the peer is slow: what does not fit waits */
			tcp_down(s, strerror(errno));
			return;
		}
		s->mid_record = s->buf[n - 1] != '\n';
		memmove(s->buf, s->buf + n, s->len - (size_t)n);
		s->len -= (size_t)n;
		if (!s->len)
			s->mid_record = 0;
	}
}

int kw_sink_open(struct kw_sink *s, const char *spec, int replace, char *err, size_t errlen)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (kw_strlcpy(s->target, spec, sizeof(s->target)) >= sizeof(s->target)) {
		snprintf(err, errlen, "output too long");
		return -ENAMETOOLONG;
	}
	if (kw_startswith(spec, "tcp://") || kw_startswith(spec, "udp://")) {
		int tcp = spec[0] == 't';

		if (replace) {
			snprintf(err, errlen, "a Prometheus exposition goes to a file (for the textfile collector) or "
				 "to `kvmwatch serve`, not to %s", spec);
			return -EINVAL;
		}
		s->kind = tcp ? KW_SINK_TCP : KW_SINK_UDP;
		/* resolved once, at start: a name server never holds a cycle */
		r = kw_hostport(s->target + 6, tcp ? SOCK_STREAM : SOCK_DGRAM, 0, &s->addr, &s->addrlen, err, errlen);
		if (r)
			return r;
		if (!tcp) {
			s->fd = socket(s->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&s->addr, s->addrlen)) {
				r = -errno;
				snprintf(err, errlen, "udp %s: %s", s->target, strerror(errno));
				return r;
			}
			return 0;
		}
		s->buf = malloc(KW_SINK_BUFFER);
		if (!s->buf) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		tcp_try(s);
		return 0;
	}
	s->kind = replace ? KW_SINK_REPLACE : KW_SINK_FILE;
	if (s->kind == KW_SINK_FILE && (r = open_file(s))) {
		snprintf(err, errlen, "cannot open %s: %s", spec, strerror(-r));
		return r;
	}
	return 0;
}

/* A Prometheus exposition replaces the file at once (a temporary file in the
 * same directory, then rename): the textfile collector never reads half. */
static int replace_file(struct kw_sink *s, const char *rec, size_t len)
{
	char tmp[sizeof(s->target) + 16];
	int fd, e = 0;

	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", s->target);
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	fchmod(fd, 0644);
	if (write(fd, rec, len) != (ssize_t)len)
		e = errno ? -errno : -EIO;
	if (close(fd) && !e)
		e = -errno;
	if (!e && rename(tmp, s->target))
		e = -errno;
	if (e)
		unlink(tmp);
	return e;
}

int kw_sink_write(struct kw_sink *s, const char *rec, size_t len)
{
	switch (s->kind) {
	case KW_SINK_REPLACE:
		return replace_file(s, rec, len);
	case KW_SINK_FILE:
		if (kw_sink_reopen) {
			/* logrotate moved the file: write on in a new one */
			kw_sink_reopen = 0;
			close(s->fd);
			if (open_file(s))
				return -errno;
		}
		return write(s->fd, rec, len) == (ssize_t)len ? 0 : -errno;
	case KW_SINK_UDP:
		/* one datagram per record; what the kernel cannot take now is dropped */
		if (send(s->fd, rec, len, MSG_DONTWAIT) != (ssize_t)len)
			s->dropped++;
		return 0;
	case KW_SINK_TCP:
		kw_sink_flush(s);
		if (len > KW_SINK_BUFFER - s->len) {
			if (!s->dropped)
				kw_warn("output %s: %s: records are dropped (and counted) until it takes them again",
					s->target, s->connected ? "the peer does not read" : "not connected");
			s->dropped++;
			return 0;
		}
		memcpy(s->buf + s->len, rec, len);
		s->len += len;
		kw_sink_flush(s);
		return 0;
	}
	return 0;
}

void kw_sink_close(struct kw_sink *s)
{
	if (s->kind == KW_SINK_TCP && s->len && s->connected) {
		/* the last records: a moment for a live peer, never longer */
		uint64_t until = kw_now_mono_ns() + 1000000000ull;

		while (s->len && s->connected && kw_now_mono_ns() < until) {
			struct pollfd p = { s->fd, POLLOUT, 0 };

			poll(&p, 1, 50);
			kw_sink_flush(s);
		}
	}
	if (s->dropped)
		kw_warn("output %s: %llu record%s dropped", s->target, (unsigned long long)s->dropped,
			s->dropped == 1 ? "" : "s");
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	s->fd = -1;
	s->buf = NULL;
}
