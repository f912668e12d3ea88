/*
 * mime_uri.c - the MIME walker's URIs (see mime.h): found in the joined
 * text (http://, https://, ftp://, mailto:, www.) or handed over from
 * HTML attributes. The host is taken out as a browser would (userinfo and
 * port dropped, "\" read as "/" after http:, %XX decoded, lower case) and
 * IP literals are recognized in every notation a browser accepts (WHATWG
 * URL 3.5: 3232235777, 0xc0a80101, 0300.0250.1.1, 192.168.257), so that
 * a URIBL or IP rule cannot be dodged by spelling. Each distinct URI is
 * kept once (a hash set), up to max_uris; then scanning stops.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"
#include "mime_int.h"

/* utf8_cut - n, or less so that s[0..n) does not end inside a
 * character (s is valid UTF-8 up to where it was cut) */
static size_t
utf8_cut(const char *s, size_t n)
{
	size_t i = n, need;
	unsigned char c;

	while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0 || (c = (unsigned char)s[i - 1]) < 0xc0)
		return n;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
	return n - (i - 1) >= need ? n : i - 1;
}

/* uri_scheme - the length of the scheme before ':', or 0 */
static size_t
uri_scheme(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !str_isalpha((unsigned char)s[0]))
		return 0;
	for (i = 1; i < n && i < 32 &&
	     (str_isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' ||
		 s[i] == '.');
	     i++)
		;
	return i < n && s[i] == ':' ? i : 0;
}

/* uri_is - is s[0..k) this scheme? */
static bool
uri_is(const char *s, size_t k, const char *scheme)
{
	return str_caseeq_len(s, k, scheme);
}

/* host_end - where the host starting at s[i] ends, at e at the latest:
 * at a byte no host holds (WHATWG URL 3.5, forbidden host code points),
 * after the ']' of a literal, else before a port, or in a mailto: at
 * anything a domain name cannot hold */
static size_t
host_end(const char *s, size_t i, size_t e, bool mail)
{
	size_t k;
	unsigned char c;

	for (k = i; k < e; k++) {
		c = (unsigned char)s[k];
		if (c <= ' ' || c == 0x7f ||
		    strchr("/\\?#<>\"^|`{}", c) != NULL)
			return k;
		if (s[i] == '[') {
			if (c == ']')
				return k + 1;
		} else if (c == ':' ||
		    (mail && c < 0x80 && !str_isalnum(c) &&
			strchr(".-_%", c) == NULL))
			return k;
	}
	return e;
}

/*
 * uri_host_span - where the host is in s[0..n): after "scheme://" (for
 * http, https, ftp, ws and wss any run of '/' and '\', as browsers
 * read them), "//", or at a bare "www."; after the last '@' of the
 * authority; before a port. mailto: the domain of the first address.
 * false when the URI has no authority.
 */
static bool
uri_host_span(const char *s, size_t n, size_t *hs, size_t *he)
{
	size_t k = uri_scheme(s, n), i, e, at;

	if (k > 0 && uri_is(s, k, "mailto")) {
		for (e = k + 1; e < n && s[e] != '?' && s[e] != ','; e++)
			;
		for (at = e; at > k + 1 && s[at - 1] != '@'; at--)
			;
		if (at == k + 1)
			return false;
		e = host_end(s, at, e, true);
		*hs = at;
		*he = e;
		return true;
	}
	if (k > 0) {
		i = k + 1;
		if (uri_is(s, k, "http") || uri_is(s, k, "https") ||
		    uri_is(s, k, "ftp") || uri_is(s, k, "ws") ||
		    uri_is(s, k, "wss"))
			while (i < n && (s[i] == '/' || s[i] == '\\'))
				i++;
		else if (i + 1 < n && s[i] == '/' && s[i + 1] == '/')
			i += 2;
		else
			return false;
	} else if (n >= 2 && (s[0] == '/' || s[0] == '\\') &&
	    (s[1] == '/' || s[1] == '\\'))
		i = 2;
	else if (n >= 4 && str_ncaseeq(s, "www.", 4))
		i = 0;
	else
		return false;
	/* the authority ends where a host cannot go on (WHATWG URL 3.5,
	 * forbidden host code points) */
	for (e = i; e < n && (unsigned char)s[e] > ' ' && s[e] != 0x7f &&
	     strchr("/\\?#<>\"^|`{}", s[e]) == NULL;
	     e++)
		;
	for (at = e; at > i && s[at - 1] != '@'; at--)
		;
	e = host_end(s, at, e, false);
	i = at;
	*hs = i;
	*he = e;
	return true;
}

/* hexv - value of a hex digit, or -1 */
static int
hexv(unsigned char c)
{
	if (str_isdigit(c))
		return c - '0';
	c = (unsigned char)str_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* host_decode - %XX of the host decoded into out, unless that gives
 * bytes a host cannot hold (then as written); the length */
static size_t
host_decode(const char *s, size_t n, char *out)
{
	size_t i, o = 0;
	unsigned char c;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    hexv((unsigned char)s[i + 1]) >= 0 &&
		    hexv((unsigned char)s[i + 2]) >= 0) {
			c = (unsigned char)(hexv((unsigned char)s[i + 1]) * 16 +
			    hexv((unsigned char)s[i + 2]));
			if (c <= ' ' || c == 0x7f ||
			    strchr("/\\?#@%", c) != NULL)
				break;
			out[o++] = (char)c;
			i += 2;
		} else
			out[o++] = s[i];
	}
	if (i < n || !mime_utf8_valid(out, o)) {
		memcpy(out, s, n);
		return n;
	}
	return o;
}

/* ipv4_num - one part of an IPv4 address as URLs have it: decimal, hex
 * after 0x, octal after 0 (WHATWG URL 3.5, "IPv4 number parser") */
static bool
ipv4_num(const char *s, size_t n, uint64_t *v)
{
	unsigned base = 10;
	size_t i = 0;
	int d;

	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	} else if (n >= 2 && s[0] == '0') {
		base = 8;
		i = 1;
	}
	if (n == 0)
		return false;
	for (*v = 0; i < n; i++) {
		d = hexv((unsigned char)s[i]);
		if (d < 0 || (unsigned)d >= base)
			return false;
		*v = *v * base + (unsigned)d;
		if (*v > 0xffffffffu)
			*v = 0x100000000u; /* too big, and stays so */
	}
	return true;
}

/* ipv4_parse - the host as an IPv4 address of 1 to 4 parts, the last
 * filling the bytes left (so "3232235777" and "192.168.257" are ones) */
static bool
ipv4_parse(const char *h, size_t n, uint32_t *addr)
{
	uint64_t part[4], v;
	size_t np = 0, i = 0, e, k;

	while (i <= n) {
		for (e = i; e < n && h[e] != '.'; e++)
			;
		if (np == 4 || !ipv4_num(h + i, e - i, &part[np]))
			return false;
		np++;
		i = e + 1;
	}
	for (k = 0; k + 1 < np; k++)
		if (part[k] > 255)
			return false;
	if (part[np - 1] >= (uint64_t)1 << (8 * (5 - np)))
		return false;
	v = part[np - 1];
	for (k = 0; k + 1 < np; k++)
		v |= part[k] << (8 * (3 - k));
	*addr = (uint32_t)v;
	return true;
}

/* host_ip - is the host (lower case) an address? Then its usual form
 * into out (INET6_ADDRSTRLEN bytes at least) */
static bool
host_ip(const char *h, size_t n, char *out, size_t size)
{
	char in[AG_MIME_URI_MAX + 1];
	unsigned char a6[16];
	struct in_addr a4;
	uint32_t v;
	size_t k;

	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
		if (n >= 5 && memcmp(h, "ipv6:", 5) == 0) {
			h += 5; /* RFC 5321 4.1.3, in mailto: */
			n -= 5;
		}
		for (k = 0; k < n && h[k] != '%'; k++)
			; /* a zone */
		memcpy(in, h, k);
		in[k] = '\0';
		if (inet_pton(AF_INET6, in, a6) == 1)
			return inet_ntop(AF_INET6, a6, out, (socklen_t)size) !=
			    NULL;
		if (inet_pton(AF_INET, in, &a4) == 1)
			return inet_ntop(AF_INET, &a4, out, (socklen_t)size) !=
			    NULL;
		return false;
	}
	if (!ipv4_parse(h, n, &v))
		return false;
	snprintf(out, size, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255,
	    (v >> 8) & 255, v & 255);
	return true;
}

/* uri_hash - FNV-1a */
static uint64_t
uri_hash(const char *s, size_t n)
{
	uint64_t h = 14695981039346656037ull;

	while (n-- > 0)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* uri_slot - the slot of this URI in the set: the kept one, or the
 * empty slot for it */
static struct mime_uri **
uri_slot(struct mime *w, const char *s, size_t n)
{
	size_t mask = w->uri_tabsize - 1, i = uri_hash(s, n) & mask;
	struct mime_uri *u;

	while ((u = w->uri_tab[i]) != NULL) {
		if (strncmp(u->uri, s, n) == 0 && u->uri[n] == '\0')
			break;
		i = (i + 1) & mask;
	}
	return &w->uri_tab[i];
}

/* uri_grow - a set with room for one more (at most half full) */
static bool
uri_grow(struct mime *w)
{
	size_t size = w->uri_tabsize ? w->uri_tabsize * 2 : 64;
	struct mime_uri *u;

	if (w->res.nuris + 1 <= w->uri_tabsize / 2)
		return true;
	if ((w->uri_tab = arena_allocarray(w->a, size, sizeof(u))) == NULL) {
		w->failed = true;
		return false;
	}
	w->uri_tabsize = size;
	for (u = w->res.uris; u != NULL; u = u->next)
		*uri_slot(w, u->uri, strlen(u->uri)) = u;
	return true;
}

/* mime_uri_add - keep a URI (s: valid UTF-8, maybe cut inside its
 * last character); html: from an attribute, which may be relative */
void
mime_uri_add(struct mime *w, const char *s, size_t n, bool html)
{
	char ub[AG_MIME_URI_MAX + 1], hb[AG_MIME_URI_MAX + 1];
	char ip[INET6_ADDRSTRLEN + 1];
	size_t hs = 0, he = 0, hl = 0, ul, k;
	struct mime_uri *u, **slot;

	if (w->uri_full || w->failed)
		return;
	if (n > AG_MIME_URI_MAX)
		n = AG_MIME_URI_MAX;
	if ((n = utf8_cut(s, n)) == 0)
		return;
	if (uri_host_span(s, n, &hs, &he))
		hl = host_decode(s + hs, he - hs, hb);
	else if (!html)
		return;
	for (k = hl; k > 0 && hb[k - 1] == '.'; k--)
		;
	if (k == 0 && !html)
		return; /* "http://" or "http://./": not a link */
	memcpy(ub, s, hs);
	memcpy(ub + hs, hb, hl);
	memcpy(ub + hs + hl, s + he, n - he);
	ul = hs + hl + n - he;
	ub[ul] = '\0';
	if (!uri_grow(w) || *(slot = uri_slot(w, ub, ul)) != NULL)
		return;
	for (k = 0; k < hl; k++)
		hb[k] = (char)str_lower((unsigned char)hb[k]);
	while (hl > 0 && hb[hl - 1] == '.')
		hl--;
	if ((u = arena_zalloc(w->a, sizeof(*u))) == NULL ||
	    (u->uri = arena_memdup(w->a, ub, ul)) == NULL) {
		w->failed = true;
		return;
	}
	if ((u->ip_literal = host_ip(hb, hl, ip, sizeof(ip))))
		u->host = arena_strdup(w->a, ip);
	else
		u->host = arena_memdup(w->a, hb, hl);
	if (u->host == NULL) {
		w->failed = true;
		return;
	}
	u->from_html = html;
	*slot = u;
	if (w->uri_tail != NULL)
		w->uri_tail->next = u;
	else
		w->res.uris = u;
	w->uri_tail = u;
	if (++w->res.nuris == w->max_uris)
		w->uri_full = true;
}

/* uri_start - the length of a URI prefix at t[i] (followed by at least
 * one byte before to; prev: the byte before it), or 0; not inside a
 * word */
static size_t
uri_start(const char *t, size_t i, size_t to, unsigned char prev)
{
	static const char *const pfx[] = {
	    "http://", "https://", "ftp://", "mailto:", "www."};
	size_t k, l;

	if (str_isalnum(prev) || prev == '_')
		return 0;
	for (k = 0; k < sizeof(pfx) / sizeof(pfx[0]); k++) {
		l = strlen(pfx[k]);
		if (to - i <= l || !str_ncaseeq(t + i, pfx[k], l))
			continue;
		if (k == 4 && strchr(".-/@:", prev) != NULL)
			return 0; /* inside a host or path */
		return l;
	}
	return 0;
}

/* uri_stop - does c end a URI in text? */
static bool
uri_stop(unsigned char c)
{
	return c <= ' ' || c == 0x7f || strchr("<>\"`{}|^", c) != NULL;
}

/* uri_trim - without trailing punctuation, and without a closing
 * bracket that has no opening one in the URI */
static size_t
uri_trim(const char *s, size_t n)
{
	size_t i, po = 0, pc = 0, bo = 0, bc = 0;

	for (i = 0; i < n; i++) {
		po += s[i] == '(';
		pc += s[i] == ')';
		bo += s[i] == '[';
		bc += s[i] == ']';
	}
	while (n > 0) {
		if (strchr(".,;:!?'*", s[n - 1]) != NULL)
			n--;
		else if (s[n - 1] == ')' && pc > po) {
			n--;
			pc--;
		} else if (s[n - 1] == ']' && bc > bo) {
			n--;
			bc--;
		} else
			break;
	}
	return n;
}

/*
 * uri_run - the URIs of t[0..n), the text since the last scan; final: n
 * is where no URI can go on (at the end of a word or of a part: white
 * space comes next), else only what more text cannot change is decided
 * (a URI prefix needs the bytes after it, a URI its end or its maximum
 * length). The bytes done with.
 */
static size_t
uri_run(struct mime *w, const char *t, size_t n, bool final)
{
	size_t i = 0, j, k, e;
	unsigned char c;

	while (i < n && !w->uri_full && !w->failed) {
		if (w->uskip) {
			/* the rest of a URI cut at AG_MIME_URI_MAX */
			while (i < n && !uri_stop((unsigned char)t[i]))
				i++;
			if (i == n)
				break;
			w->uskip = false;
		}
		c = (unsigned char)(t[i] | 0x20);
		if (c != 'h' && c != 'f' && c != 'm' && c != 'w') {
			i++;
			continue;
		}
		if (!final && n - i <= 8)
			break; /* "https://" and the byte after it */
		if ((k = uri_start(t, i, n,
			 i > 0 ? (unsigned char)t[i - 1] : w->uprev)) == 0) {
			i++;
			continue;
		}
		for (j = i + k; j < n && !uri_stop((unsigned char)t[j]); j++)
			;
		if (j == n && !final && j - i <= AG_MIME_URI_MAX)
			break; /* it may go on */
		e = j - i > AG_MIME_URI_MAX ? AG_MIME_URI_MAX
					    : uri_trim(t + i, j - i);
		if (e > k)
			mime_uri_add(w, t + i, e, false);
		if (j == n && !final) {
			w->uskip = true; /* cut: skip to its end */
			return n;
		}
		i = j;
	}
	return i;
}

/* uri_consume - scan the text kept, and keep what is left undecided */
static void
uri_consume(struct mime *w, bool final)
{
	size_t k = uri_run(w, w->ub, w->ubn, final);

	if (final || w->uri_full || w->failed)
		k = w->ubn;
	if (k == 0)
		return;
	w->uprev = (unsigned char)w->ub[k - 1];
	memmove(w->ub, w->ub + k, w->ubn - k);
	w->ubn -= k;
	if (final)
		w->uskip = false; /* white space ends any URI */
}

/* mime_uri_text - text as it is made: kept until the word it is in
 * ends, at most AG_MIME_URI_BUF bytes (a longer word is scanned as far
 * as it can be) */
void
mime_uri_text(struct mime *w, const char *s, size_t n)
{
	size_t k;

	while (n > 0 && !w->uri_full && !w->failed) {
		k = AG_MIME_URI_BUF - w->ubn;
		if (k > n)
			k = n;
		memcpy(w->ub + w->ubn, s, k);
		w->ubn += k;
		s += k;
		n -= k;
		if (w->ubn == AG_MIME_URI_BUF)
			uri_consume(w, false);
	}
}

/* mime_uri_scan - the URIs of the text since the last scan, at the end
 * of a word or a part: the order of the URIs does not depend on where
 * the MTA cut the body */
void
mime_uri_scan(struct mime *w)
{
	if (w->ubn > 0)
		uri_consume(w, true);
}
