// SPDX-License-Identifier: GPL-2.0
/* serve.c - `kvmwatch serve --listen ADDR:PORT [INTERVAL]`: a Prometheus
 * /metrics endpoint (libmicrohttpd).  The collector runs on its own clock
 * (bg.c); a scrape reads the newest published cycle and never waits for a
 * collection. */
#include "bg.h"
#include "cli.h"
#include "prom.h"
#include "sink.h"
#include "util/kw_util.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#if MHD_VERSION < 0x00097002
typedef int MHD_Result_t;
#else
typedef enum MHD_Result MHD_Result_t;
#endif

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static MHD_Result_t reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body, size_t len,
			  int must_free)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, must_free ? MHD_RESPMEM_MUST_FREE
										    : MHD_RESPMEM_PERSISTENT);
	MHD_Result_t ret;

	if (!r) {
		if (must_free)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static MHD_Result_t on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			       const char *version, const char *upload, size_t *upload_size, void **state)
{
	static char index[] = "<html><head><title>kvmwatch</title></head><body><h1>kvmwatch</h1>"
			      "<p><a href=\"/metrics\">/metrics</a></p></body></html>\n";
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char not_allowed[] = "only GET and HEAD\n";
	struct cli_bg *b = cls;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", not_allowed, strlen(not_allowed), 0);
	if (!strcmp(url, "/"))
		return reply(conn, MHD_HTTP_OK, "text/html", index, strlen(index), 0);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found, strlen(not_found), 0);
	f = open_memstream(&buf, &len);
	if (!f)
		return MHD_NO;
	pthread_mutex_lock(&b->lock);
	r = cli_prom_write(f, &b->pub.vms, &b->pub.host, b->src, b->cycle_s);
	pthread_mutex_unlock(&b->lock);
	if (fclose(f) || r) {
		free(buf);
		return MHD_NO;
	}
	return reply(conn, MHD_HTTP_OK, PROM_CONTENT_TYPE, buf, len, 1);
}

int cli_run_serve(struct cli_opts *o)
{
	static struct cli_bg b;
	struct kw_config cfg = o->cfg;
	struct sockaddr_storage ss;
	struct MHD_Daemon *d;
	socklen_t sl;
	char err[512];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (kw_hostport(o->listen[0] ? o->listen : "127.0.0.1:9977", SOCK_STREAM, 1, &ss, &sl, err, sizeof(err))) {
		fprintf(stderr, "kvmwatch: --listen: %s\n", err);
		return 2;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	cfg.libvirt_retry = 1; /* the endpoint stays up: a libvirtd that comes later is taken */
	if (cli_bg_init(&b, &cfg, o->interval_given ? o->interval : 15, err, sizeof(err)) < 0) {
		fprintf(stderr, "kvmwatch: %s\n", err);
		return 1;
	}
	if (cli_bg_start(&b)) {
		fprintf(stderr, "kvmwatch: cannot start the collector thread\n");
		cli_bg_fini(&b);
		return 1;
	}
	d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, &b, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			     MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 16u,
			     MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "kvmwatch: cannot listen on %s: %s\n", o->listen[0] ? o->listen : "127.0.0.1:9977",
			strerror(errno ? errno : EADDRINUSE));
		cli_bg_fini(&b);
		return 1;
	}
	kw_info("serving /metrics on %s (every %.3g s)", o->listen[0] ? o->listen : "127.0.0.1:9977", b.interval);
	while (!kw_exiting && !b.failed)
		kw_sleep_until(kw_now_mono_ns() + 1000000000ull, &kw_exiting);
	MHD_stop_daemon(d);
	cli_bg_fini(&b);
	return b.failed ? 1 : 0;
}
