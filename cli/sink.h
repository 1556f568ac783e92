// SPDX-License-Identifier: GPL-2.0
/* sink.h - where the metric reports go besides standard output
 * (--output-file): a file, appended to and reopened on SIGHUP for
 * logrotate (a Prometheus exposition replaces the file atomically instead),
 * or a log sink over tcp://HOST:PORT or udp://HOST:PORT.  Nothing here ever
 * blocks the collection: a TCP peer that is down or slow gets the records
 * buffered (at most KW_SINK_BUFFER bytes), then dropped and counted; it is
 * reconnected with backoff. */
#ifndef KW_CLI_SINK_H
#define KW_CLI_SINK_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KW_SINK_BUFFER (1u << 20)

enum kw_sink_kind { KW_SINK_FILE, KW_SINK_REPLACE, KW_SINK_TCP, KW_SINK_UDP };

struct kw_sink {
	int kind;
	char target[4096];           /* the file, or HOST:PORT */
	int fd;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int connected, connecting;
	uint64_t next_try_ns;
	unsigned backoff_ms;
	char *buf;                   /* TCP: records not sent yet */
	size_t len;
	int mid_record;              /* the head of buf was sent in part */
	uint64_t dropped;            /* records the peer could not take */
};

/* "HOST:PORT" or "[IPV6]:PORT" (passive: ":PORT" too, numeric only, for
 * listening) to a socket address.  0, or -EINVAL with err filled. */
int kw_hostport(const char *s, int socktype, int passive, struct sockaddr_storage *ss, socklen_t *sl, char *err,
		size_t errlen);

/* Set by SIGHUP: reopen the file. */
extern volatile sig_atomic_t kw_sink_reopen;

/* Parse and open the sink (replace: a Prometheus exposition to a file).
 * Returns 0, or -errno with err filled. */
int kw_sink_open(struct kw_sink *s, const char *spec, int replace, char *err, size_t errlen);
/* Hand one record to the sink.  0; -errno only when a file cannot be written. */
int kw_sink_write(struct kw_sink *s, const char *rec, size_t len);
void kw_sink_close(struct kw_sink *s);

#endif
