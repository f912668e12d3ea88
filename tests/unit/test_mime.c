/*
 * test_mime.c - the streaming MIME walker: quoted-printable, base64,
 * bodies split at every offset and in chunks of any size, nested and
 * broken multiparts, charsets, HTML stripping, URIs and their hosts,
 * RFC 2047 header values, the limits, allocation failures, and hostile
 * bodies (100 000 parts, a 10 MB line, deep nesting) that must end with
 * bounded memory.
 */
#include "testlib.h"
#include "util/arena.h"
#include "util/buf.h"
#include "rfc5322.h"
#include "mime.h"

/* crlf - the message with "\n" turned into "\r\n" (malloc'd) */
static char *
crlf(const char *s, size_t *lenp)
{
	struct buf b = BUF_INIT;

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			buf_addch(&b, '\r');
		buf_addch(&b, *s);
	}
	return buf_detach(&b, lenp);
}

struct opts {
	size_t limit, max_parts, max_uris;
};
static const struct opts defaults = {0, 1000, 200};

/* walk_buf - headers to mime_header(), the body in chunks of chunk
 * bytes (0: whole); the result lives in a */
static const struct mime_result *
walk_buf(struct arena *a, const char *msg, size_t len, size_t chunk,
    const struct opts *o)
{
	struct rfc5322_field f;
	struct mime *m = mime_new(a, o->limit, o->max_parts, o->max_uris);
	size_t off = 0, k;
	char *n, *v;

	if (m == NULL)
		return NULL;
	while (rfc5322_next_field(msg, len, &off, &f) == AG_R5322_FIELD) {
		n = strndup(f.name, f.namelen);
		v = strndup(f.value, f.valuelen);
		k = mime_header(m, n, v);
		free(n);
		free(v);
		if (k != 0)
			return NULL;
	}
	if (chunk == 0)
		chunk = len;
	for (; off < len; off += k) {
		k = len - off < chunk ? len - off : chunk;
		if (mime_body(m, (const unsigned char *)msg + off, k) == -1)
			return NULL;
	}
	return mime_end(m);
}

/* walk - a message written with "\n", walked with CRLF line ends */
static const struct mime_result *
walk(struct arena *a, const char *msg, const struct opts *o)
{
	size_t len;
	char *m = crlf(msg, &len);
	const struct mime_result *r = walk_buf(a, m, len, 0, o);

	free(m);
	return r;
}

/* dump - every field of a result as text (malloc'd) */
static char *
dump(const struct mime_result *r)
{
	struct buf b = BUF_INIT;
	const struct mime_part *p;
	const struct mime_uri *u;

	if (r == NULL)
		return strdup("NULL");
	buf_addf(&b,
	    "flags=%#x parts=%zu text=%zu html=%zu att=%zu img=%zu "
	    "links=%zu body=%zu\n",
	    r->flags, r->nparts, r->text_parts, r->html_parts, r->attachments,
	    r->html_images, r->html_links, r->body_bytes);
	for (p = r->parts; p != NULL; p = p->next)
		buf_addf(&b, "P %d %s %s %s %s %d %zu %zu\n", p->depth, p->type,
		    p->charset ? p->charset : "-", p->encoding,
		    p->filename ? p->filename : "-", p->attachment, p->bytes,
		    p->text_bytes);
	for (u = r->uris; u != NULL; u = u->next)
		buf_addf(&b, "U %s %s %d %d\n", u->uri, u->host, u->ip_literal,
		    u->from_html);
	buf_addf(&b, "T[%s]\nR[%s]\n", r->text, r->raw);
	return buf_detach(&b, NULL);
}

/* uris - "uri>host" of each URI, with " ip" and " html", ';'-separated */
static void
uris(const struct mime_result *r, char *out, size_t size)
{
	const struct mime_uri *u;
	size_t n = 0;

	out[0] = '\0';
	for (u = r->uris; u != NULL && n < size; u = u->next)
		n += (size_t)snprintf(out + n, size - n, "%s%s>%s%s%s",
		    n ? ";" : "", u->uri, u->host, u->ip_literal ? " ip" : "",
		    u->from_html ? " html" : "");
}

/* A message with a bit of everything, for the chunk tests. */
static const char everything[] =
    "From: a@example.com\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed;\n"
    " boundary=\"outer\"\n"
    "\n"
    "preamble http://preamble.example/\n"
    "--outer\n"
    "Content-Type: multipart/alternative; boundary=alt\n"
    "\n"
    "--alt\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Caf=E9 soft=\n"
    "break, bad =ZZ escape, http://User@Example.COM:8080/a?b=3D1.\n"
    "\n"
    "Second paragraph www.example.org.\n"
    "--alt\n"
    "Content-Type: text/html; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "PHA+SGVsbG8gJmFtcDsgPGEgaHJlZj0iaHR0cDovLzMyMzIyMzU3Nzcv\n"
    "Ij53b3JsZDwvYT48L3A+PCEtLSBoaWRkZW4gLS0+PHNjcmlwdD54PTE8\n"
    "L3NjcmlwdD48aW1nIHNyYz0iaHR0cDovL1sxOjpBXS8iPiZldXJvOw==\n"
    "--alt--\n"
    "--outer\n"
    "Content-Type: text/plain; charset=shift_jis\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "=93=FA=96=7B =82=B1=82=F1\n"
    "--outer\n"
    "Content-Type: text/plain; charset=koi8-r\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "8NLJ18XU\n"
    "--outer\n"
    "Content-Type: application/octet-stream; name=\"a.bin\"\n"
    "Content-Disposition: attachment; filename*=utf-8''%C3%A9.bin\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "AAECAwQF\n"
    "--outer--\n"
    "epilogue\n";

/* test_everything - what the message above gives */
static void
test_everything(void **state)
{
	struct arena *a = arena_new(0);
	const struct mime_result *r = walk(a, everything, &defaults);
	char u[1024];

	(void)state;
	assert_non_null(r);
	want_int("flags", r->flags, MIME_F_BAD_QP | MIME_F_TEXT_BASE64);
	want_int("parts", r->nparts, 7);
	want_int("text parts", r->text_parts, 3);
	want_int("html parts", r->html_parts, 1);
	want_int("attachments", r->attachments, 1);
	want_int("images", r->html_images, 1);
	want_int("links", r->html_links, 1);
	want_str("text", r->text,
	    "Café softbreak, bad =ZZ escape, "
	    "http://User@Example.COM:8080/a?b=1.\n"
	    "Second paragraph www.example.org.\n"
	    "Hello & world\n"
	    "€\n"
	    "日本 こん\n"
	    "Привет\n");
	want_str("raw", r->raw,
	    "Café softbreak, bad =ZZ escape, "
	    "http://User@Example.COM:8080/a?b=1.\n\n"
	    "Second paragraph www.example.org.\n"
	    "<p>Hello &amp; <a href=\"http://3232235777/\">world</a></p>"
	    "<!-- hidden --><script>x=1</script>"
	    "<img src=\"http://[1::A]/\">&euro;\n"
	    "日本 こん\n"
	    "Привет\n");
	uris(r, u, sizeof(u));
	want_str("uris", u,
	    "http://User@Example.COM:8080/a?b=1>example.com;"
	    "www.example.org>www.example.org;"
	    "http://3232235777/>192.168.1.1 ip html;"
	    "http://[1::A]/>1::a ip html");
	want_str("last part",
	    r->parts->next->next->next->next->next->next->filename, "é.bin");
	arena_free(a);
}

/* test_chunks - the same result for any chunk size and any one cut */
static void
test_chunks(void **state)
{
	static const size_t sizes[] = {1, 2, 3, 7, 64, 0};
	struct arena *a;
	size_t len, i;
	char *msg = crlf(everything, &len), *want, *got, row[64];

	(void)state;
	a = arena_new(0);
	want = dump(walk_buf(a, msg, len, 0, &defaults));
	arena_free(a);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		a = arena_new(0);
		got = dump(walk_buf(a, msg, len, sizes[i], &defaults));
		snprintf(row, sizeof(row), "chunks of %zu", sizes[i]);
		want_str(row, got, want);
		free(got);
		arena_free(a);
	}
	free(want);
	free(msg);
}

/* test_cut_everywhere - the body cut once at every offset: inside CRLF,
 * boundary lines, base64 quartets, QP escapes, Shift_JIS characters */
static void
test_cut_everywhere(void **state)
{
	static const char *hdr = "multipart/mixed; boundary=\"outer\"";
	struct arena *a;
	size_t len, k, start;
	char *msg = crlf(everything, &len), *want = NULL, *got, row[64];
	struct mime *m;

	(void)state;
	start = (size_t)(strstr(msg, "\r\n\r\n") - msg) + 4;
	for (k = start; k <= len; k++) {
		a = arena_new(0);
		m = mime_new(a, 0, 1000, 200);
		mime_header(m, "MIME-Version", "1.0");
		mime_header(m, "Content-Type", hdr);
		mime_body(m, (unsigned char *)msg + start, k - start);
		mime_body(m, (unsigned char *)msg + k, len - k);
		got = dump(mime_end(m));
		if (want == NULL)
			want = strdup(got);
		snprintf(row, sizeof(row), "cut at %zu", k);
		want_str(row, got, want);
		free(got);
		arena_free(a);
	}
	assert_non_null(strstr(want, "Привет"));
	free(want);
	free(msg);
}

/* One text part: headers, body, what text and raw must be. */
struct text_row {
	const char *name, *hdrs, *body, *text, *raw;
	unsigned flags;
};

/* run_text_rows - each row as a single-part message */
static void
run_text_rows(const struct text_row *rows, size_t n)
{
	struct buf b = BUF_INIT;
	struct arena *a;
	const struct mime_result *r;
	char row[128];
	size_t i;

	for (i = 0; i < n; i++) {
		buf_reset(&b);
		buf_addf(&b, "MIME-Version: 1.0\n%s\n%s", rows[i].hdrs,
		    rows[i].body);
		a = arena_new(0);
		r = walk(a, b.data, &defaults);
		assert_non_null(r);
		snprintf(row, sizeof(row), "%s: text", rows[i].name);
		want_str(row, r->text, rows[i].text);
		if (rows[i].raw != NULL) {
			snprintf(row, sizeof(row), "%s: raw", rows[i].name);
			want_str(row, r->raw, rows[i].raw);
		}
		snprintf(row, sizeof(row), "%s: flags", rows[i].name);
		want_int(row, r->flags, rows[i].flags);
		arena_free(a);
	}
	buf_release(&b);
}

#define QP    "Content-Transfer-Encoding: quoted-printable\n"
#define B64   "Content-Transfer-Encoding: base64\n"
#define PLAIN "Content-Type: text/plain\n"

/* test_qp - quoted-printable (RFC 2045 6.7) */
static void
test_qp(void **state)
{
	static const struct text_row rows[] = {
	    {"escapes", QP, "=41=42=c3=a9\n", "ABé\n", "ABé\n", 0},
	    {"soft break", QP, "long=\nline\n", "longline\n", "longline\n", 0},
	    {"soft break, trailing space", QP, "long= \t\nline", "longline\n",
		"longline\n", 0},
	    {"trailing white space goes", QP, "a  \t\nb", "a b\n", "a\nb\n", 0},
	    {"inner white space stays", QP, "a  b", "a b\n", "a  b\n", 0},
	    {"= at the very end", QP, "end=", "end\n", "end\n", 0},
	    {"bad escape kept", QP, "a=ZZb", "a=ZZb\n", "a=ZZb\n",
		MIME_F_BAD_QP},
	    {"half an escape", QP, "a=4\nb", "a=4 b\n", "a=4\nb\n",
		MIME_F_BAD_QP},
	    {"half an escape at the end", QP, "a=4", "a=4\n", "a=4\n",
		MIME_F_BAD_QP},
	    {"= then text", QP, "a= b", "a= b\n", "a= b\n", MIME_F_BAD_QP},
	    {"== escape", QP, "==41", "=A\n", "=A\n", MIME_F_BAD_QP},
	    {"paragraphs", QP, "one=\n two\n\nthree\n", "one two\nthree\n",
		"one two\n\nthree\n", 0},
	    {"NUL is a space", QP, "a=00b", "a b\n", "a b\n", 0},
	};

	(void)state;
	run_text_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

/* test_base64 - base64 (RFC 2045 6.8) */
static void
test_base64(void **state)
{
	static const struct text_row rows[] = {
	    {"plain", B64, "aGVsbG8gd29ybGQ=\n", "hello world\n", NULL,
		MIME_F_TEXT_BASE64},
	    {"white space", B64, "aGVs bG8g\n\td29y\nbGQ=\n", "hello world\n",
		NULL, MIME_F_TEXT_BASE64},
	    {"== padding", B64, "aGk=\n", "hi\n", NULL, MIME_F_TEXT_BASE64},
	    {"bad characters skipped", B64, "aGV*sbG8!=\n", "hello\n", NULL,
		MIME_F_TEXT_BASE64 | MIME_F_BAD_BASE64},
	    {"no padding", B64, "aGVsbG8\n", "hello\n", NULL,
		MIME_F_TEXT_BASE64 | MIME_F_BAD_BASE64},
	    {"one character too many", B64, "aGVsbG8=a\n", "hello\n", NULL,
		MIME_F_TEXT_BASE64 | MIME_F_BAD_BASE64},
	    {"stray padding", B64, "=aGk=\n", "hi\n", NULL,
		MIME_F_TEXT_BASE64 | MIME_F_BAD_BASE64},
	    {"concatenated", B64, "aGk=\naGk=\n", "hihi\n", NULL,
		MIME_F_TEXT_BASE64},
	    {"8-bit text is a reason",
		B64 "Content-Type: text/plain; "
		    "charset=utf-8\n",
		"w6k=\n", "é\n", NULL, 0},
	    {"CRLF inside", B64, "YQ0KDQpi\n", "a\nb\n", "a\n\nb\n",
		MIME_F_TEXT_BASE64},
	    {"empty", B64, "\n", "", "", 0},
	};

	(void)state;
	run_text_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

/* test_charsets - to UTF-8, always valid */
static void
test_charsets(void **state)
{
	static const struct text_row rows[] = {
	    {"iso-8859-1", "Content-Type: text/plain; charset=ISO-8859-1\n",
		"caf\xe9 \xa9", "café ©\n", NULL, 0},
	    {"latin1 read as windows-1252",
		"Content-Type: text/plain; charset=latin1\n", "\x93q\x94",
		"“q”\n", NULL, 0},
	    {"windows-1252", "Content-Type: text/plain; charset=windows-1252\n",
		"\x80 \x85 \x99", "€ … ™\n", NULL, 0},
	    {"koi8-r", "Content-Type: text/plain; charset=\"koi8-r\"\n",
		"\xf0\xd2\xc9\xd7\xc5\xd4", "Привет\n", NULL, 0},
	    {"shift_jis", "Content-Type: text/plain; charset=Shift_JIS\n",
		"\x93\xfa\x96\x7b", "日本\n", NULL, 0},
	    {"iso-2022-jp", "Content-Type: text/plain; charset=iso-2022-jp\n",
		"\x1b$BF|K\\\x1b(B", "日本\n", NULL, 0},
	    {"utf-16 in base64",
		"Content-Type: text/plain; charset=utf-16\n" B64, "//5oAGkA\n",
		"hi\n", NULL, 0},
	    {"bad shift_jis byte",
		"Content-Type: text/plain; charset=shift_jis\n",
		"a\xa0"
		"b",
		"a\xef\xbf\xbd"
		"b\n",
		NULL, MIME_F_BAD_CHARSET},
	    {"unknown charset",
		"Content-Type: text/plain; charset=x-nonesuch\n",
		"ok \xc3\xa9 \xe9", "ok é \xef\xbf\xbd\n", NULL,
		MIME_F_BAD_CHARSET},
	    {"odd charset name",
		"Content-Type: text/plain; charset=\"utf-8//"
		"IGNORE\"\n",
		"x", "x\n", NULL, MIME_F_BAD_CHARSET},
	    {"invalid UTF-8", "Content-Type: text/plain; charset=utf-8\n",
		"a\xc3(b \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf",
		"a\xef\xbf\xbd(b \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
		"\xef\xbf\xbd"
		"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
		"\xef\xbf\xbd\xef\xbf\xbd\n",
		NULL, MIME_F_BAD_CHARSET},
	    {"cut UTF-8 at the end",
		"Content-Type: text/plain; charset=utf-8\n", "a\xe6\x97",
		"a\xef\xbf\xbd\n", NULL, MIME_F_BAD_CHARSET},
	    {"us-ascii with UTF-8",
		"Content-Type: text/plain; charset=us-ascii\n", "\xc3\xa9",
		"é\n", NULL, 0},
	    {"no charset: UTF-8 where valid, else windows-1252", PLAIN,
		"\xc3\xa9t\xe9 \x93x\x94", "été “x”\n", NULL, 0},
	    {"no Content-Type at all", "", "caf\xe9", "café\n", NULL, 0},
	};

	(void)state;
	run_text_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

#define HTML "Content-Type: text/html\n"

/* test_html - stripping, entities, paragraphs */
static void
test_html(void **state)
{
	static const struct text_row rows[] = {
	    {"entities", HTML,
		"a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &copy;&reg; "
		"&#65;&#x42;&#X43; &#128;&#0;&#xD800; &amp",
		"a & b <c> \"d\" 'e' ©® ABC €\xef\xbf\xbd\xef\xbf\xbd &\n",
		NULL, 0},
	    {"nbsp separates words", HTML, "a&nbsp;b&nbsp;&nbsp;c", "a b c\n",
		NULL, 0},
	    {"unknown entity kept", HTML, "&foo; &#; & x &zwnj;",
		"&foo; &#; & x \xe2\x80\x8c\n", NULL, 0},
	    {"comments", HTML, "a<!-- x -- y -->b<!---->c<!-->d<!--->e",
		"abcde\n", NULL, 0},
	    {"comment closed by --!>", HTML, "a<!-- x --!>b", "ab\n", NULL, 0},
	    {"comment never closed", HTML, "a<!-- b", "a\n", NULL, 0},
	    {"doctype and processing instruction", HTML,
		"<!DOCTYPE html><?xml x?>a", "a\n", NULL, 0},
	    {"script", HTML,
		"<script>if (a<b) x='</p>';</script>ok <SCRIPT "
		"type=x>y</Script >too",
		"ok too\n", NULL, 0},
	    {"style", HTML, "<style>p { color: red }</style>ok", "ok\n", NULL,
		0},
	    {"script never closed", HTML, "a<script>b", "a\n", NULL, 0},
	    {"paragraphs", HTML, "<p>one</p><p>two</p>", "one\ntwo\n", NULL, 0},
	    {"one br is a space", HTML, "a<br>b", "a b\n", NULL, 0},
	    {"two br end a paragraph", HTML, "a<br><br>b<br/> <br />c",
		"a\nb\nc\n", NULL, 0},
	    {"div and table", HTML,
		"<div>x</div>y<table><tr><td>a</td><td>b</td></tr>"
		"<tr><td>c</td></tr></table>",
		"x\ny\na b\nc\n", NULL, 0},
	    {"white space collapsed", HTML, "  a \n\t b\r\n\n c  ", "a b c\n",
		NULL, 0},
	    {"inline tags join", HTML, "fr<b>e</b>e<span>!</span>", "free!\n",
		NULL, 0},
	    {"a lone <", HTML, "a < b <3 c<", "a < b <3 c<\n", NULL, 0},
	    {"> in a quoted value", HTML,
		"<a title=\"x>y\" href='http://q.example/'>l</a>", "l\n", NULL,
		0},
	    {"</> and </ x>", HTML, "a</>b</ x>c", "abc\n", NULL, 0},
	    {"raw keeps the tags", HTML, "<p>a &amp; b</p>\n<p>c</p>",
		"a & b\nc\n", "<p>a &amp; b</p>\n<p>c</p>\n", 0},
	};

	(void)state;
	run_text_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

/* test_html_counts - <img> and <a href> */
static void
test_html_counts(void **state)
{
	struct arena *a = arena_new(0);
	const struct mime_result *r = walk(a,
	    "Content-Type: text/html\n\n"
	    "<a href=x>1</a><a name=y>2</a><A HREF>3</a><img src=i><IMG>"
	    "<img/src=j><a\nhref\n=\n\"z\">4</a>",
	    &defaults);
	char u[512];

	(void)state;
	want_int("images", r->html_images, 3);
	want_int("links", r->html_links, 3);
	want_str("text", r->text, "1234\n");
	uris(r, u, sizeof(u));
	want_str("uris", u, "x> html;i> html;j> html;z> html");
	want_int("html parts", r->html_parts, 1);
	arena_free(a);
}

/* test_uris - URIs in text and attributes, their hosts */
static void
test_uris(void **state)
{
	static const struct {
		const char *name, *hdrs, *body, *want;
	} rows[] = {
	    {"userinfo and port", PLAIN,
		"see http://User:pw@Example.COM:8080/p. and more",
		"http://User:pw@Example.COM:8080/p>example.com"},
	    {"every scheme", PLAIN,
		"https://a.example/ ftp://b.example/f mailto:x@C.Example?s=1 "
		"www.d.example",
		"https://a.example/>a.example;ftp://b.example/f>b.example;"
		"mailto:x@C.Example?s=1>c.example;www.d.example>www.d.example"},
	    {"%XX in the host", PLAIN, "http://%77%77%77.ex%41mple.com/%41",
		"http://www.exAmple.com/%41>www.example.com"},
	    {"%XX that a host cannot hold stays", PLAIN,
		"http://a%2fb.example/ http://%zz.example/",
		"http://a%2fb.example/>a%2fb.example;"
		"http://%zz.example/>%zz.example"},
	    {"decimal IPv4", PLAIN, "http://3232235777/",
		"http://3232235777/>192.168.1.1 ip"},
	    {"hex and octal IPv4", PLAIN,
		"http://0xC0A80101/ http://0300.0250.01.01/ http://0x7f.1/",
		"http://0xC0A80101/>192.168.1.1 ip;"
		"http://0300.0250.01.01/>192.168.1.1 ip;"
		"http://0x7f.1/>127.0.0.1 ip"},
	    {"dotted quad, short forms", PLAIN,
		"http://10.1.2.3:80/ http://127.1/ http://192.168.257/",
		"http://10.1.2.3:80/>10.1.2.3 ip;http://127.1/>127.0.0.1 ip;"
		"http://192.168.257/>192.168.1.1 ip"},
	    {"not addresses", PLAIN,
		"http://256.1.1.1.1/ http://1.2.3.256x/ http://08.1/ "
		"http://4294967296/",
		"http://256.1.1.1.1/>256.1.1.1.1;"
		"http://1.2.3.256x/>1.2.3.256x;http://08.1/>08.1;"
		"http://4294967296/>4294967296"},
	    {"IPv6", PLAIN,
		"http://[2001:DB8:0:0::1]:443/ mailto:a@[IPv6:::1] "
		"mailto:b@[10.0.0.1]",
		"http://[2001:DB8:0:0::1]:443/>2001:db8::1 ip;"
		"mailto:a@[IPv6:::1]>::1 ip;mailto:b@[10.0.0.1]>10.0.0.1 ip"},
	    {"duplicates once", PLAIN,
		"http://a.example/ http://a.example/\nhttp://a.example/",
		"http://a.example/>a.example"},
	    {"trailing punctuation", PLAIN,
		"(http://a.example/x_(y)). <http://b.example/>, "
		"\"http://c.example/\"; 'www.d.example'!",
		"http://a.example/x_(y)>a.example;http://b.example/>b.example;"
		"http://c.example/>c.example;www.d.example>www.d.example"},
	    {"inside words: no", PLAIN,
		"xhttp://a.example/ foo.www.b.example mailto:nobody", ""},
	    {"empty hosts: no", PLAIN, "http:// http://./ http:x", ""},
	    {"slashes as browsers read them", PLAIN, "http:///x http:\\\\y/",
		"http:///x>x"},
	    {"trailing dot of a host", PLAIN, "http://A.Example./",
		"http://A.Example./>a.example"},
	    {"IDN host kept in UTF-8", PLAIN, "http://Bücher.example/",
		"http://Bücher.example/>bücher.example"},
	    {"href, src, action", HTML,
		"<a href=\" http://a.example/?a=1&amp;b=2 \">x</a>"
		"<img src='HTTP://B.example'><form action=/post>"
		"<area href=\"mailto:m@M.example\"><iframe src=//f.example/x>"
		"<frame src=\"http:\\\\g.example\\y\">",
		"http://a.example/?a=1&b=2>a.example html;"
		"HTTP://B.example>b.example html;/post> html;"
		"mailto:m@M.example>m.example html;"
		"//f.example/x>f.example html;"
		"http:\\\\g.example\\y>g.example html"},
	    {"tab and newline in an href go", HTML,
		"<a href=\"http://a.exa\tmple/\np\">x</a>",
		"http://a.example/p>a.example html"},
	    {"in the order they come", HTML,
		"http://t1.example/ <a href=\"http://h.example/\">x</a> "
		"http://t2.example/",
		"http://t1.example/>t1.example;http://h.example/>h.example "
		"html;"
		"http://t2.example/>t2.example"},
	    {"URIs in HTML text", HTML,
		"<p>visit http://t.example/&lt;x&gt; now</p>",
		"http://t.example/>t.example"},
	    {"in a text attachment: no",
		"Content-Type: text/plain\nContent-Disposition: attachment\n",
		"http://a.example/", ""},
	};
	struct buf b = BUF_INIT;
	struct arena *a;
	const struct mime_result *r;
	char u[2048];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		buf_reset(&b);
		buf_addf(&b, "%s\n%s", rows[i].hdrs, rows[i].body);
		a = arena_new(0);
		r = walk(a, b.data, &defaults);
		uris(r, u, sizeof(u));
		want_str(rows[i].name, u, rows[i].want);
		arena_free(a);
	}
	buf_release(&b);
}

/* test_uri_limit - max_uris, and the list while the body streams */
static void
test_uri_limit(void **state)
{
	struct opts o = {0, 100, 5};
	struct arena *a = arena_new(0);
	struct mime *m = mime_new(a, 0, 100, 5);
	const struct mime_result *r;
	const char *b1 = "http://1.example/ http://2.example/ \nhttp://1.exam",
		   *b2 = "ple/\nhttp://3.example/ http://4.example/ "
			 "http://5.example/ http://6.example/\n";
	size_t i;

	(void)state;
	mime_header(m, "Content-Type", "text/plain");
	mime_body(m, (const unsigned char *)b1, strlen(b1));
	want_int("after the first chunk", mime_uri_count(m), 2);
	assert_string_equal(mime_uris(m)->uri, "http://1.example/");
	mime_body(m, (const unsigned char *)b2, strlen(b2));
	r = mime_end(m);
	want_int("kept", r->nuris, 5);
	want_int("count", mime_uri_count(m), 5);
	arena_free(a);
	/* many duplicates cost nothing */
	a = arena_new(0);
	{
		struct buf b = BUF_INIT;

		buf_addstr(&b, "Content-Type: text/plain\n\n");
		for (i = 0; i < 20000; i++)
			buf_addstr(&b, "http://same.example/ ");
		r = walk(a, b.data, &o);
		want_int("one of 20000", r->nuris, 1);
		buf_release(&b);
	}
	arena_free(a);
}

/* test_decode_header - RFC 2047 words, unfolding, trimming */
static void
test_decode_header(void **state)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
	    {"=?utf-8?q?Caf=C3=A9?=", "Café"},
	    {"=?ISO-8859-1?Q?a_b=E9?=", "a bé"},
	    {"=?utf-8?B?w6k=?=", "é"},
	    {"=?utf-8?b?w6k?=", "é"},
	    {"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"},
	    {"=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab"},
	    {"=?utf-8?b?ww==?= =?utf-8?b?qQ==?=", "é"},
	    {"=?utf-8?q?a?= b", "a b"},
	    {"x =?utf-8?q?a?=", "x a"},
	    {"=?utf-8?q?a?= =?iso-8859-1?q?=E9?=", "aé"},
	    {"=?koi8-r?b?8NLJ18XU?=", "Привет"},
	    {"=?shift_jis?B?k/qWew==?=", "日本"},
	    {"=?utf-8*en?q?x?=", "x"},
	    {"foo=?utf-8?q?bar?=baz", "foobarbaz"},
	    {"=?utf-8?q?hello world?=", "hello world"},
	    {"=?x-nonesuch?q?a?= b", "=?x-nonesuch?q?a?= b"},
	    {"=?utf-8?b?*?=", "=?utf-8?b?*?="},
	    {"=?utf-8?x?a?=", "=?utf-8?x?a?="},
	    {"=?utf-8?q?open", "=?utf-8?q?open"},
	    {"=??q?a?=", "=??q?a?="},
	    {"=?utf-8?q?a?= =?x-nonesuch?q?b?=", "a =?x-nonesuch?q?b?="},
	    {"=?utf-8?q?=FF?=", "\xef\xbf\xbd"},
	    {"=?utf-8?q?a=0D=0Ab=00c?=", "a  b c"},
	    {"caf\xc3\xa9", "café"},
	    {"caf\xe9", "café"},
	    {"  a \t b  ", "a \t b"},
	    {"a\r\n\tb\r\n c", "a\tb c"},
	    {" =?utf-8?q?_x_?= ", "x"},
	    {"", ""},
	};
	struct arena *a = arena_new(0);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		want_str(rows[i].in,
		    mime_decode_header(a, rows[i].in, strlen(rows[i].in)),
		    rows[i].want);
	want_str("NUL", mime_decode_header(a, "a\0b", 3), "a b");
	arena_free(a);
}

/* test_multipart - nesting, defaults, message/rfc822 */
static void
test_multipart(void **state)
{
	struct arena *a = arena_new(0);
	const struct mime_result *r;
	char *d;

	(void)state;
	r = walk(a,
	    "MIME-Version: 1.0\n"
	    "Content-Type: multipart/mixed; boundary=\"a b\"\n\n"
	    "preamble\n"
	    "--a b\n\n"
	    "default part\n"
	    "--a b\n"
	    "Content-Type: message/rfc822\n\n"
	    "From: x@example.net\n"
	    "Content-Type: multipart/digest; boundary=d\n\n"
	    "--d\n\n"
	    "Subject: in the digest\n\n"
	    "digest message\n"
	    "--d--\n"
	    "--a b\n"
	    "Content-Type: image/png; name=x.png\n"
	    "Content-Transfer-Encoding: base64\n\n"
	    "iVBORw0KGgo=\n"
	    "--a b--\n"
	    "epilogue\n",
	    &defaults);
	d = dump(r);
	want_str("walk", d,
	    "flags=0 parts=7 text=2 html=0 att=1 img=0 links=0 body=309\n"
	    "P 0 multipart/mixed - 7bit - 0 290 0\n"
	    "P 1 text/plain - 7bit - 0 14 13\n"
	    "P 1 message/rfc822 - 7bit - 0 123 0\n"
	    "P 2 multipart/digest - 7bit - 0 49 0\n"
	    "P 3 message/rfc822 - 7bit - 0 42 0\n"
	    "P 4 text/plain - 7bit - 0 16 15\n"
	    "P 1 image/png - base64 x.png 0 14 0\n"
	    "T[default part\ndigest message\n]\n"
	    "R[default part\ndigest message\n]\n");
	free(d);
	arena_free(a);
}

/* One whole message: what its flags and text must be. */
struct msg_row {
	const char *name, *msg, *text;
	unsigned flags;
	size_t nparts;
};

/* run_msg_rows - each row as a message */
static void
run_msg_rows(const struct msg_row *rows, size_t n)
{
	struct arena *a;
	const struct mime_result *r;
	char row[128];
	size_t i;

	for (i = 0; i < n; i++) {
		a = arena_new(0);
		r = walk(a, rows[i].msg, &defaults);
		assert_non_null(r);
		snprintf(row, sizeof(row), "%s: text", rows[i].name);
		want_str(row, r->text, rows[i].text);
		snprintf(row, sizeof(row), "%s: flags", rows[i].name);
		want_int(row, r->flags, rows[i].flags);
		snprintf(row, sizeof(row), "%s: parts", rows[i].name);
		want_int(row, r->nparts, rows[i].nparts);
		arena_free(a);
	}
}

#define MV "MIME-Version: 1.0\n"

/* test_broken - broken structure is flagged, the walk goes on */
static void
test_broken(void **state)
{
	static const struct msg_row rows[] = {
	    {"never closed",
		MV "Content-Type: multipart/mixed; boundary=b\n\n--b\n\ntext\n",
		"text\n", MIME_F_BAD_BOUNDARY, 2},
	    {"no boundary parameter: read as text",
		MV "Content-Type: multipart/mixed\n\n--b\n\ntext\n--b--\n",
		"--b\ntext --b--\n", MIME_F_BAD_BOUNDARY, 1},
	    {"empty boundary",
		MV "Content-Type: multipart/mixed; boundary=\"\"\n\nx\n", "x\n",
		MIME_F_BAD_BOUNDARY, 1},
	    {"outer boundary closes inner",
		MV "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
		   "Content-Type: multipart/alternative; boundary=i\n\n--i\n\n"
		   "inner\n--o\n\nouter\n--o--\n",
		"inner\nouter\n", MIME_F_BAD_BOUNDARY, 4},
	    {"close delimiter with junk",
		MV "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n"
		   "--b--junk\nepilogue\n",
		"x\n", 0, 2},
	    {"a boundary that starts another is not it",
		MV "Content-Type: multipart/mixed; boundary=b1\n\n--b1\n"
		   "Content-Type: multipart/mixed; boundary=b10\n\n--b10\n\nx\n"
		   "--b10--\n--b1--\n",
		"x\n", 0, 3},
	    {"junk after a delimiter: not one",
		MV "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n"
		   "--bx\n--b--\n",
		"x --bx\n", 0, 2},
	    {"boundary with white space after it",
		MV "Content-Type: multipart/mixed; boundary=b\n\n--b  \n\nx\n"
		   "--b--\n",
		"x\n", 0, 2},
	    {"header line without colon",
		MV "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		   "Content-Type text/html\nbody\n--b--\n",
		"Content-Type text/html body\n", MIME_F_BAD_HEADER, 2},
	    {"folded part header, continuation first",
		MV "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		   " stray\nContent-Type: text/html;\n charset=utf-8\n\n"
		   "<b>x</b>\n--b--\n",
		"x\n", MIME_F_BAD_HEADER, 2},
	    {"8-bit part header",
		MV "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		   "Content-Description: caf\xc3\xa9\n\nx\n--b--\n",
		"x\n", MIME_F_8BIT_HEADERS, 2},
	    {"Content-Type twice",
		MV "Content-Type: text/plain\nContent-Type: text/html\n\n<b>x",
		"<b>x\n", MIME_F_BAD_HEADER, 1},
	    {"no MIME-Version, multipart followed anyway",
		"Content-Type: multipart/mixed; "
		"boundary=b\n\n--b\n\nx\n--b--\n",
		"x\n", MIME_F_NO_MIME, 2},
	    {"boundary in part headers",
		MV "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		   "Content-Type: text/plain\n--b\n\ny\n--b--\n",
		"y\n", 0, 3},
	    {"LF line ends",
		"MIME-Version: 1.0\nContent-Type: text/plain\n\na\n\nb\n",
		"a\nb\n", 0, 1},
	};

	(void)state;
	run_msg_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

/* test_lf - a body with LF line ends only (not through crlf()) */
static void
test_lf(void **state)
{
	const char *m =
	    "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
	    "Content-Type: text/plain\n\none\ntwo\n\nthree\n--b--\n";
	struct arena *a = arena_new(0);
	const struct mime_result *r = walk_buf(a, m, strlen(m), 0, &defaults);

	(void)state;
	want_str("text", r->text, "one two\nthree\n");
	want_str("raw", r->raw, "one\ntwo\n\nthree\n");
	want_int("flags", r->flags, MIME_F_NO_MIME);
	arena_free(a);
}

/* test_limits - scan_limit, max_parts, depth */
static void
test_limits(void **state)
{
	struct opts o = {20, 1000, 200};
	struct arena *a;
	const struct mime_result *r;
	struct buf b = BUF_INIT;
	const struct mime_part *p;
	int i, maxd = 0;

	(void)state;
	/* scan_limit: 20 bytes of body looked at */
	a = arena_new(0);
	r = walk(a,
	    "Content-Type: text/plain\n\n0123456789 0123456789 "
	    "http://cut.example/\n",
	    &o);
	want_int("truncated", r->flags, MIME_F_TRUNCATED | MIME_F_NO_MIME);
	want_int("body bytes", r->body_bytes, 20);
	want_str("text", r->text, "0123456789 012345678\n");
	want_int("no URI past it", r->nuris, 0);
	arena_free(a);
	/* exactly the limit is not truncated */
	a = arena_new(0);
	o.limit = 10;
	r = walk(a, "Content-Type: text/plain\n\n01234567\n", &o);
	want_int("exact", r->flags, MIME_F_NO_MIME);
	arena_free(a);
	/* a multipart cut short: its open boundary is not an error */
	a = arena_new(0);
	o.limit = 30;
	r = walk(a,
	    MV "Content-Type: multipart/mixed; boundary=b\n\n--b\n\n"
	       "text text text text text\n--b--\n",
	    &o);
	want_int("cut multipart", r->flags, MIME_F_TRUNCATED);
	arena_free(a);
	/* max_parts */
	buf_addstr(&b, MV "Content-Type: multipart/mixed; boundary=b\n\n");
	for (i = 0; i < 10; i++)
		buf_addf(&b, "--b\n\npart %d\n", i);
	buf_addstr(&b, "--b--\n");
	a = arena_new(0);
	o = (struct opts){0, 3, 200};
	r = walk(a, b.data, &o);
	want_int("parts kept", r->nparts, 3);
	want_int("too many", r->flags, MIME_F_TOO_MANY);
	want_str("text of the parts kept", r->text, "part 0\npart 1\n");
	arena_free(a);
	/* depth: 30 nested multiparts */
	buf_reset(&b);
	buf_addstr(&b, MV);
	for (i = 0; i < 30; i++)
		buf_addf(&b,
		    "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i,
		    i);
	buf_addstr(&b, "\ndeep text\n");
	for (i = 29; i >= 0; i--)
		buf_addf(&b, "--b%d--\n", i);
	a = arena_new(0);
	r = walk(a, b.data, &defaults);
	for (p = r->parts; p != NULL; p = p->next)
		if (p->depth > maxd)
			maxd = p->depth;
	want_int("max depth", maxd, MIME_MAX_DEPTH);
	want_int("too deep", r->flags, MIME_F_TOO_DEEP);
	want_int("parts", r->nparts, MIME_MAX_DEPTH + 1);
	want_str("text", r->text, "");
	arena_free(a);
	buf_release(&b);
}

/*
 * test_limit_chunks - mime-1 (fuzz_mime): a base64 part left with an
 * open quartet. Closed by its boundary before scan_limit, it is a
 * complete part and so bad base64, whether the body came whole (the
 * limit known before the boundary is read) or a byte at a time (the
 * limit reached after it); cut by the limit, it is not.
 */
static void
test_limit_chunks(void **state)
{
	static const char msg[] =
	    MV "Content-Type: multipart/alternative; boundary=XX\n\n"
	       "--XX\nContent-Type: text/html\n" B64 "\n"
	       "PGh0bWw+PGhlYWQ+PHN0eWxlPnB7Y2\n--XX--\nepilogue\n";
	static const struct {
		const char *name, *cut_before;
		unsigned flags;
	} rows[] = {
	    {"cut in the epilogue", "logue",
		MIME_F_TRUNCATED | MIME_F_BAD_BASE64 | MIME_F_TEXT_BASE64},
	    {"cut after the close delimiter", "epilogue",
		MIME_F_TRUNCATED | MIME_F_BAD_BASE64 | MIME_F_TEXT_BASE64},
	    {"cut in the open quartet", "Y2",
		MIME_F_TRUNCATED | MIME_F_TEXT_BASE64},
	};
	static const size_t sizes[] = {0, 1, 2, 3, 7};
	struct arena *a;
	struct opts o = defaults;
	size_t len, i, k, body;
	char *m = crlf(msg, &len), *want, *got, row[128];

	(void)state;
	body = (size_t)(strstr(m, "\r\n\r\n") - m) + 4;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		o.limit = (size_t)(strstr(m, rows[i].cut_before) - m) - body;
		a = arena_new(0);
		want = dump(walk_buf(a, m, len, 0, &o));
		snprintf(row, sizeof(row), "%s: flags", rows[i].name);
		want_int(row, walk_buf(a, m, len, 0, &o)->flags, rows[i].flags);
		arena_free(a);
		for (k = 1; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
			a = arena_new(0);
			got = dump(walk_buf(a, m, len, sizes[k], &o));
			snprintf(row, sizeof(row), "%s: chunks of %zu",
			    rows[i].name, sizes[k]);
			want_str(row, got, want);
			free(got);
			arena_free(a);
		}
		free(want);
	}
	free(m);
}

/* test_api - calls out of order, an empty body, the result twice */
static void
test_api(void **state)
{
	struct arena *a = arena_new(0);
	struct mime *m = mime_new(a, 0, 0, 0);
	const struct mime_result *r, *r2;

	(void)state;
	r = mime_end(m);
	assert_non_null(r);
	want_int("parts", r->nparts, 1);
	want_str("type", r->parts->type, "text/plain");
	want_str("text", r->text, "");
	want_str("raw", r->raw, "");
	want_int("flags", r->flags, MIME_F_NO_MIME);
	r2 = mime_end(m);
	assert_ptr_equal(r, r2);
	assert_int_equal(mime_body(m, (const unsigned char *)"x", 1), 0);
	assert_int_equal(mime_header(m, "Content-Type", "text/html"), 0);
	want_int("nothing more", r->body_bytes, 0);
	arena_free(a);
	/* headers after the body started are ignored */
	a = arena_new(0);
	m = mime_new(a, 0, 0, 0);
	mime_body(m, (const unsigned char *)"<b>x</b>", 8);
	mime_header(m, "Content-Type", "text/html");
	r = mime_end(m);
	want_str("still plain", r->text, "<b>x</b>\n");
	arena_free(a);
}

/* test_alloc_failures - every allocation failing in turn: -1 or NULL,
 * never a crash (and no leak: the sanitizer build checks) */
static void
test_alloc_failures(void **state)
{
	struct arena *a;
	const struct mime_result *r;
	size_t len;
	char *msg = crlf(everything, &len), *want, *got;
	unsigned long n;

	(void)state;
	a = arena_new(0);
	want = dump(walk_buf(a, msg, len, 5, &defaults));
	arena_free(a);
	for (n = 1;; n++) {
		arena_test_fail_after(n);
		a = arena_new(0);
		arena_test_fail_after(0);
		r = walk_buf(a, msg, len, 5, &defaults);
		if (r != NULL) {
			got = dump(r);
			want_str("the run that did not fail", got, want);
			free(got);
			arena_free(a);
			break;
		}
		arena_free(a);
	}
	assert_true(n > 10);
	for (n = 1; n < 40; n++) {
		arena_test_fail_after(n);
		a = arena_new(0);
		arena_test_fail_after(0);
		got = mime_decode_header(
		    a, "=?utf-8?q?a?= b =?koi8-r?b?8NLJ?=", 33);
		assert_true(got == NULL || strcmp(got, "a b При") == 0);
		arena_free(a);
	}
	free(want);
	free(msg);
}

/* big - a message of the headers and then n copies of unit */
static char *
big(const char *hdrs, const char *unit, size_t n, const char *tail,
    size_t *lenp)
{
	size_t hl = strlen(hdrs), ul = strlen(unit), tl = strlen(tail), i;
	char *m = malloc(hl + ul * n + tl + 1), *p = m;

	assert_non_null(m);
	memcpy(p, hdrs, hl);
	p += hl;
	for (i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	*lenp = hl + ul * n + tl;
	return m;
}

/* What an output function was handed. */
struct sink {
	struct buf text, raw;
	size_t calls;
};

/* sink_out - mime_set_output's function: pieces end at characters */
static void
sink_out(void *ctx, int which, const char *s, size_t n)
{
	struct sink *k = ctx;

	assert_true(n > 0);
	assert_true((s[0] & 0xc0) != 0x80);
	buf_add(which == MIME_OUT_TEXT ? &k->text : &k->raw, s, n);
	k->calls++;
}

/* walk_out - walk_buf with an output function */
static const struct mime_result *
walk_out(struct arena *a, const char *msg, size_t len, size_t chunk,
    const struct opts *o, struct sink *k)
{
	struct rfc5322_field f;
	struct mime *m = mime_new(a, o->limit, o->max_parts, o->max_uris);
	size_t off = 0, n;

	mime_set_output(m, sink_out, k);
	while (rfc5322_next_field(msg, len, &off, &f) == AG_R5322_FIELD) {
		char *name = strndup(f.name, f.namelen);
		char *v = strndup(f.value, f.valuelen);

		mime_header(m, name, v);
		free(name);
		free(v);
	}
	for (; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		mime_body(m, (const unsigned char *)msg + off, n);
	}
	return mime_end(m);
}

/*
 * test_output - with an output function, text and raw go to it as they
 * would have been kept (any chunking, caps included), nothing else
 * changes, and a walk of 10 MB of text holds a few KB, whatever the
 * length of its words, with the URIs at its end found.
 */
static void
test_output(void **state)
{
	static const size_t sizes[] = {1, 7, 64, 100000};
	struct opts o = defaults;
	struct sink k;
	struct arena *a;
	const struct mime_result *r;
	size_t len, i, lim;
	char *msg = crlf(everything, &len), *want, *got, row[64];
	const struct mime_result *kept;
	struct mime_result handed;

	(void)state;
	for (lim = 0; lim <= 300; lim += 150) {
		o.limit = lim;
		a = arena_new(0);
		kept = walk_buf(a, msg, len, 0, &o);
		want = dump(kept);
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			struct arena *b = arena_new(0);

			k = (struct sink){BUF_INIT, BUF_INIT, 0};
			r = walk_out(b, msg, len, sizes[i], &o, &k);
			snprintf(row, sizeof(row), "limit %zu, chunks of %zu",
			    lim, sizes[i]);
			assert_null(r->text);
			assert_null(r->raw);
			want_int(row, r->textlen, k.text.len);
			want_int(row, r->rawlen, k.raw.len);
			/* the result as if the text handed over were kept */
			handed = *r;
			handed.text = k.text.data;
			handed.raw = k.raw.data;
			got = dump(&handed);
			want_str(row, got, want);
			free(got);
			buf_release(&k.text);
			buf_release(&k.raw);
			arena_free(b);
		}
		free(want);
		arena_free(a);
	}
	free(msg);
	/* 10 MB of text in words of 1 to 100 000 bytes, URIs last */
	{
		struct buf b = BUF_INIT;
		char ulist[256];
		size_t w;

		buf_addstr(&b, "Content-Type: text/html\r\n\r\n<p>");
		for (w = 1; b.len < 10000000; w = w * 7 % 100003)
			for (i = 0; i < w; i++)
				buf_addch(&b, i + 1 < w ? 'x' : ' ');
		buf_addstr(&b,
		    "http://last.example/ <a href=http://a.example/>"
		    "www.end.example</a>\r\n");
		k = (struct sink){BUF_INIT, BUF_INIT, 0};
		a = arena_new(0);
		o = defaults;
		r = walk_out(a, b.data, b.len, 65536, &o, &k);
		want_int("text handed over", k.text.len, r->textlen);
		assert_true(r->textlen > 9000000);
		uris(r, ulist, sizeof(ulist));
		want_str("URIs after it", ulist,
		    "http://last.example/>last.example;"
		    "http://a.example/>a.example html;"
		    "www.end.example>www.end.example");
		want_int("URIs", r->nuris, 3);
		if (arena_bytes(a) > 48 * 1024)
			fail_msg("the walk holds %zu bytes", arena_bytes(a));
		arena_free(a);
		buf_release(&k.text);
		buf_release(&k.raw);
		buf_release(&b);
	}
}

/* test_hostile - bounded time and memory on bodies made to hurt */
static void
test_hostile(void **state)
{
	struct arena *a;
	const struct mime_result *r;
	struct opts o = {0, 200000, 200};
	size_t len, i;
	char *m;

	(void)state;
	/* 100 000 parts, all kept */
	m = big("Content-Type: multipart/mixed; boundary=b\r\n\r\n",
	    "--b\r\n\r\nx\r\n", 100000, "--b--\r\n", &len);
	a = arena_new(0);
	r = walk_buf(a, m, len, 65536, &o);
	want_int("parts", r->nparts, 100001);
	want_int("text parts", r->text_parts, 100000);
	want_int("text", r->textlen, 200000);
	assert_true(arena_bytes(a) < 16 * len);
	arena_free(a);
	/* ... and with max_parts 1000: memory stays small */
	a = arena_new(0);
	o.max_parts = 1000;
	r = walk_buf(a, m, len, 65536, &o);
	want_int("parts kept", r->nparts, 1000);
	want_int("too many", r->flags & MIME_F_TOO_MANY, MIME_F_TOO_MANY);
	assert_true(arena_bytes(a) < 512 * 1024);
	arena_free(a);
	free(m);
	/* a 10 MB line of text, no limit: in text, with bounded copies */
	m = big("Content-Type: text/plain\r\n\r\n", "aaaaaaaaaa", 1000000, "",
	    &len);
	a = arena_new(0);
	o.max_parts = 1000;
	r = walk_buf(a, m, len, 65536, &o);
	want_int("text of the long line", r->textlen, 10000001);
	/* text and raw, each doubling: under 4 times their length each */
	assert_true(arena_bytes(a) < 8 * len);
	arena_free(a);
	/* ... with scan_limit 1 MB */
	a = arena_new(0);
	o.limit = 1 << 20;
	r = walk_buf(a, m, len, 65536, &o);
	want_int("cut", r->flags & MIME_F_TRUNCATED, MIME_F_TRUNCATED);
	want_int("text cut", r->textlen, (1 << 20) + 1);
	assert_true(arena_bytes(a) < 10 * (1 << 20));
	arena_free(a);
	free(m);
	/* a 10 MB line of an attachment: nothing grows */
	m = big("Content-Type: application/octet-stream\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n",
	    "QUJDRA==AA", 1000000, "", &len);
	a = arena_new(0);
	o.limit = 0;
	r = walk_buf(a, m, len, 65536, &o);
	want_int("attachment bytes", r->parts->bytes, 10000000);
	assert_true(arena_bytes(a) < 64 * 1024);
	arena_free(a);
	free(m);
	/* 10 000 nested multiparts */
	m = big("Content-Type: multipart/mixed; boundary=b\r\n\r\n",
	    "--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n", 10000,
	    "--b\r\n\r\nx\r\n", &len);
	a = arena_new(0);
	r = walk_buf(a, m, len, 65536, &o);
	want_int("too deep", r->flags & MIME_F_TOO_DEEP, MIME_F_TOO_DEEP);
	assert_true(arena_bytes(a) < 512 * 1024);
	arena_free(a);
	free(m);
	/* 1 MB of garbage base64 */
	m = big("Content-Type: text/plain\r\nContent-Transfer-Encoding: "
		"base64\r\n\r\n",
	    "!@#$%^&*()\x01\xff\r\n", 80000, "", &len);
	a = arena_new(0);
	r = walk_buf(a, m, len, 65536, &o);
	want_int("bad base64", r->flags & MIME_F_BAD_BASE64, MIME_F_BAD_BASE64);
	want_int("nothing decoded", r->textlen, 0);
	arena_free(a);
	free(m);
	/* 20 000 parts switching charsets, known and unknown */
	{
		struct buf b = BUF_INIT;

		buf_addstr(
		    &b, "Content-Type: multipart/mixed; boundary=b\r\n\r\n");
		for (i = 0; i < 20000; i++)
			buf_addf(&b,
			    "--b\r\nContent-Type: text/plain; "
			    "charset=%s\r\n\r\n\xe9\r\n",
			    i % 3 == 0	     ? "koi8-r"
				: i % 3 == 1 ? "shift_jis"
					     : "x-bad");
		a = arena_new(0);
		r = walk_buf(a, b.data, b.len, 65536, &(struct opts){0, 0, 0});
		want_int("charset parts", r->nparts, 20001);
		want_int("bad charset", r->flags & MIME_F_BAD_CHARSET,
		    MIME_F_BAD_CHARSET);
		arena_free(a);
		buf_release(&b);
	}
	/* 100 000 distinct URIs, no limit */
	{
		struct buf b = BUF_INIT;

		buf_addstr(&b, "Content-Type: text/plain\r\n\r\n");
		for (i = 0; i < 100000; i++)
			buf_addf(&b, "http://h%zu.example/ ", i);
		a = arena_new(0);
		r = walk_buf(a, b.data, b.len, 65536, &(struct opts){0, 0, 0});
		want_int("distinct URIs", r->nuris, 100000);
		assert_true(arena_bytes(a) < 16 * b.len);
		arena_free(a);
		buf_release(&b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_everything),
	    cmocka_unit_test(test_chunks),
	    cmocka_unit_test(test_cut_everywhere),
	    cmocka_unit_test(test_qp),
	    cmocka_unit_test(test_base64),
	    cmocka_unit_test(test_charsets),
	    cmocka_unit_test(test_html),
	    cmocka_unit_test(test_html_counts),
	    cmocka_unit_test(test_uris),
	    cmocka_unit_test(test_uri_limit),
	    cmocka_unit_test(test_decode_header),
	    cmocka_unit_test(test_multipart),
	    cmocka_unit_test(test_broken),
	    cmocka_unit_test(test_lf),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_limit_chunks),
	    cmocka_unit_test(test_api),
	    cmocka_unit_test(test_alloc_failures),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_output),
	};

	return AG_RUN(tests);
}
