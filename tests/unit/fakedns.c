/*
 * fakedns.c - UDP DNS responder for unit tests (see fakedns.h).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fakedns.h"

#define FD_MAX 256

struct fd_rec {
	char name[256];
	int type;
	unsigned char rdata[1200];
	size_t rdlen;
	unsigned ttl;
};

struct fd_beh {
	char name[256];
	int rcode, delay_ms;
	bool drop;
	unsigned count;
};

struct fakedns {
	int sock, port, stop[2];
	pthread_t thr;
	pthread_mutex_t lock;
	struct fd_rec recs[FD_MAX];
	int nrecs;
	struct fd_beh behs[FD_MAX];
	int nbehs;
};

struct fd_reply {
	struct fakedns *f;
	unsigned char pkt[1500];
	size_t len;
	struct sockaddr_in to;
	int delay_ms;
};

/* fd_name_wire - presentation name to wire form */
static size_t
fd_name_wire(const char *name, unsigned char *out)
{
	size_t n = 0;

	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		out[n++] = (unsigned char)l;
		memcpy(out + n, name, l);
		n += l;
		name += l + (dot ? 1 : 0);
	}
	out[n++] = 0;
	return n;
}

/* fakedns_add - one record */
void
fakedns_add(struct fakedns *f, const char *name, int type, const char *data,
    unsigned ttl)
{
	struct fd_rec *r;

	pthread_mutex_lock(&f->lock);
	if (f->nrecs == FD_MAX) {
		fprintf(stderr, "fakedns: more than %d records\n", FD_MAX);
		abort();
	}
	r = &f->recs[f->nrecs++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->type = type;
	r->ttl = ttl;
	r->rdlen = 0;
	if (type == 16) {
		const char *p = data;

		if (strlen(data) + strlen(data) / 255 + 2 > sizeof(r->rdata))
			abort(); /* a test asked for more than UDP carries */
		for (;;) {
			const char *bar = strchr(p, '|');
			size_t l = bar ? (size_t)(bar - p) : strlen(p);

			/* strings of at most 255 bytes */
			do {
				size_t piece = l > 255 ? 255 : l;

				r->rdata[r->rdlen++] = (unsigned char)piece;
				memcpy(r->rdata + r->rdlen, p, piece);
				r->rdlen += piece;
				p += piece;
				l -= piece;
			} while (l > 0);
			if (!bar)
				break;
			p = bar + 1;
		}
	} else if (type == 1) {
		inet_pton(AF_INET, data, r->rdata);
		r->rdlen = 4;
	} else if (type == 28) {
		inet_pton(AF_INET6, data, r->rdata);
		r->rdlen = 16;
	} else if (type == 15) {
		unsigned pref = (unsigned)atoi(data);

		r->rdata[0] = (unsigned char)(pref >> 8);
		r->rdata[1] = (unsigned char)pref;
		r->rdlen =
		    2 + fd_name_wire(strchr(data, ' ') + 1, r->rdata + 2);
	} else {
		r->rdlen = fd_name_wire(data, r->rdata);
	}
	pthread_mutex_unlock(&f->lock);
}

/* fakedns_behave - per-name behaviour */
void
fakedns_behave(
    struct fakedns *f, const char *name, int rcode, int delay_ms, bool drop)
{
	struct fd_beh *b;

	pthread_mutex_lock(&f->lock);
	if (f->nbehs == FD_MAX) {
		fprintf(stderr, "fakedns: more than %d behaviours\n", FD_MAX);
		abort();
	}
	b = &f->behs[f->nbehs++];
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->rcode = rcode;
	b->delay_ms = delay_ms;
	b->drop = drop;
	b->count = 0;
	pthread_mutex_unlock(&f->lock);
}

/* fakedns_count - queries for a name */
unsigned
fakedns_count(struct fakedns *f, const char *name)
{
	unsigned n = 0;
	int i;

	pthread_mutex_lock(&f->lock);
	for (i = 0; i < f->nbehs; i++)
		if (strcasecmp(f->behs[i].name, name) == 0)
			n = f->behs[i].count;
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* fd_send_later - thread that sends a delayed reply */
static void *
fd_send_later(void *arg)
{
	struct fd_reply *r = arg;
	struct timespec ts = {
	    r->delay_ms / 1000, (r->delay_ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	sendto(r->f->sock, r->pkt, r->len, 0, (struct sockaddr *)&r->to,
	    sizeof(r->to));
	free(r);
	return NULL;
}

/* fd_answer - build the reply to one query */
static void
fd_answer(struct fakedns *f, const unsigned char *q, size_t qlen,
    struct sockaddr_in *from)
{
	struct fd_reply *r = calloc(1, sizeof(*r));
	char name[256];
	size_t off = 12, n = 0, qend;
	int qtype, i, rcode = -1, delay = 0, an = 0, exists = 0;
	bool drop = false;
	pthread_t t;

	if (qlen < 17) {
		free(r);
		return;
	}
	while (off < qlen && q[off] != 0) {
		size_t l = q[off++];

		if (n)
			name[n++] = '.';
		memcpy(name + n, q + off, l);
		n += l;
		off += l;
	}
	name[n] = '\0';
	qend = off + 5;
	qtype = (q[off + 1] << 8) | q[off + 2];
	memcpy(r->pkt, q, qend);
	r->pkt[2] = 0x84 | (q[2] & 0x01); /* QR AA, RD copied */
	r->pkt[3] = 0x80;		  /* RA */
	r->pkt[6] = r->pkt[7] = r->pkt[8] = r->pkt[9] = r->pkt[10] =
	    r->pkt[11] = 0;
	r->len = qend;
	pthread_mutex_lock(&f->lock);
	for (i = 0; i < f->nbehs; i++)
		if (strcasecmp(f->behs[i].name, name) == 0) {
			f->behs[i].count++;
			rcode = f->behs[i].rcode;
			delay = f->behs[i].delay_ms;
			drop = f->behs[i].drop;
		}
	for (i = 0; i < f->nrecs && rcode == -1; i++) {
		struct fd_rec *rec = &f->recs[i];

		if (strcasecmp(rec->name, name) != 0)
			continue;
		exists = 1;
		if (rec->type != qtype)
			continue;
		r->pkt[r->len++] = 0xc0;
		r->pkt[r->len++] = 12;
		r->pkt[r->len++] = 0;
		r->pkt[r->len++] = (unsigned char)qtype;
		r->pkt[r->len++] = 0;
		r->pkt[r->len++] = 1;
		r->pkt[r->len++] = (unsigned char)(rec->ttl >> 24);
		r->pkt[r->len++] = (unsigned char)(rec->ttl >> 16);
		r->pkt[r->len++] = (unsigned char)(rec->ttl >> 8);
		r->pkt[r->len++] = (unsigned char)rec->ttl;
		r->pkt[r->len++] = (unsigned char)(rec->rdlen >> 8);
		r->pkt[r->len++] = (unsigned char)rec->rdlen;
		memcpy(r->pkt + r->len, rec->rdata, rec->rdlen);
		r->len += rec->rdlen;
		an++;
	}
	pthread_mutex_unlock(&f->lock);
	if (drop) {
		free(r);
		return;
	}
	r->pkt[7] = (unsigned char)an;
	if (rcode >= 0)
		r->pkt[3] = (unsigned char)(0x80 | rcode);
	else if (an == 0 && !exists)
		r->pkt[3] = 0x83; /* NXDOMAIN */
	if (rcode < 0 && an == 0) {
		/* negative answer: SOA with minimum 60 for the negative TTL */
		static const unsigned char soa[] = {0xc0, 12, 0, 6, 0, 1, 0, 0,
		    0, 60, 0, 22, 0, 0, 0, 0, 0, 1, 0, 0, 0, 60, 0, 0, 0, 60, 0,
		    0, 0, 60, 0, 0, 0, 60};

		memcpy(r->pkt + r->len, soa, sizeof(soa));
		r->len += sizeof(soa);
		r->pkt[9] = 1;
	}
	r->f = f;
	r->to = *from;
	r->delay_ms = delay;
	if (delay > 0 && pthread_create(&t, NULL, fd_send_later, r) == 0) {
		pthread_detach(t);
		return;
	}
	sendto(
	    f->sock, r->pkt, r->len, 0, (struct sockaddr *)from, sizeof(*from));
	free(r);
}

/* fd_loop - the server thread */
static void *
fd_loop(void *arg)
{
	struct fakedns *f = arg;
	struct pollfd p[2] = {{f->sock, POLLIN, 0}, {f->stop[0], POLLIN, 0}};
	unsigned char buf[1500];

	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (poll(p, 2, -1) <= 0)
			continue;
		if (p[1].revents)
			return NULL;
		n = recvfrom(f->sock, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &fl);
		if (n > 0)
			fd_answer(f, buf, (size_t)n, &from);
	}
}

/* fakedns_start - bind 127.0.0.1:0 and serve */
struct fakedns *
fakedns_start(void)
{
	struct fakedns *f = calloc(1, sizeof(*f));
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	pthread_mutex_init(&f->lock, NULL);
	f->sock = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(f->sock, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(f->sock, (struct sockaddr *)&sin, &len) == -1 ||
	    pipe(f->stop) == -1)
		abort();
	f->port = ntohs(sin.sin_port);
	pthread_create(&f->thr, NULL, fd_loop, f);
	return f;
}

int
fakedns_port(const struct fakedns *f)
{
	return f->port;
}

/* fakedns_stop - end the server */
void
fakedns_stop(struct fakedns *f)
{
	if (write(f->stop[1], "x", 1) != 1)
		abort();
	pthread_join(f->thr, NULL);
	close(f->sock);
	close(f->stop[0]);
	close(f->stop[1]);
	pthread_mutex_destroy(&f->lock);
	free(f);
}
