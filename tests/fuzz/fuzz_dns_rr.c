/*
 * fuzz_dns_rr.c - libFuzzer target: DNS record data helpers (dns.c).
 *
 * Input: one control byte (rrtype for dns_rr_addr in its low 2 bits),
 * one offset byte, then the rdata. The rdata is copied into a buffer of
 * exactly its size so ASan sees any read past it. Runs dns_rr_txt,
 * dns_rr_txt_nstrings, dns_rr_addr, and dns_rr_name at offsets 0, 1, 2
 * (MX), the offset byte, the last byte and the end, with output buffers
 * from 1 byte to 1025 (NI_MAXHOST), and dns_name_valid on the rdata as
 * text.
 * Asserts, beyond "no crash":
 *   - dns_rr_txt fails exactly when dns_rr_txt_nstrings is -1; else its
 *     length is rdlen - nstrings, the text is the strings' bytes in
 *     order, and it is NUL-terminated;
 *   - dns_rr_addr: 4 for A with 4 bytes (IPv4-mapped), 6 for AAAA with
 *     16 bytes, -1 for anything else;
 *   - dns_rr_name: on success the text fits the buffer, is "." or passes
 *     dns_name_valid, and encodes back to exactly the wire labels read.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "dns.h"
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* check_txt - dns_rr_txt against an independent walk */
static void
check_txt(struct arena *a, const struct dns_rr *rr)
{
	int ns = dns_rr_txt_nstrings(rr);
	size_t len = 12345, off = 0, n = 0;
	char *txt = dns_rr_txt(a, rr, &len);

	if (ns == -1) {
		FUZZ_CHECK(txt == NULL,
		    "dns_rr_txt accepted rdata that "
		    "dns_rr_txt_nstrings refuses");
		return;
	}
	FUZZ_CHECK(txt != NULL, "dns_rr_txt failed on %d good strings", ns);
	FUZZ_CHECK(len == rr->len - (size_t)ns,
	    "dns_rr_txt length %zu, want rdlen %zu - nstrings %d", len, rr->len,
	    ns);
	FUZZ_CHECK(txt[len] == '\0', "dns_rr_txt text not NUL-terminated");
	while (off < rr->len) {
		size_t l = rr->data[off++];

		FUZZ_CHECK(memcmp(txt + n, rr->data + off, l) == 0,
		    "dns_rr_txt bytes differ at %zu", n);
		n += l;
		off += l;
	}
	FUZZ_CHECK(n == len, "strings hold %zu bytes, text %zu", n, len);
	FUZZ_CHECK(dns_rr_txt(a, rr, NULL) != NULL,
	    "dns_rr_txt with lenp NULL failed");
}

/* check_addr - dns_rr_addr for one type */
static void
check_addr(const struct dns_rr *rr, int type)
{
	unsigned char out[16];
	int rc = dns_rr_addr(rr, type, out);

	if (type == AG_DNS_T_A && rr->len == 4) {
		static const unsigned char pfx[12] = {
		    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

		FUZZ_CHECK(rc == 4, "A with 4 bytes: rc %d", rc);
		FUZZ_CHECK(memcmp(out, pfx, 12) == 0 &&
			memcmp(out + 12, rr->data, 4) == 0,
		    "A not IPv4-mapped");
	} else if (type == AG_DNS_T_AAAA && rr->len == 16) {
		FUZZ_CHECK(rc == 6, "AAAA with 16 bytes: rc %d", rc);
		FUZZ_CHECK(memcmp(out, rr->data, 16) == 0, "AAAA bytes differ");
	} else
		FUZZ_CHECK(rc == -1, "type %d with %zu bytes: rc %d", type,
		    rr->len, rc);
}

/* check_name - dns_rr_name at one offset with one buffer size */
static void
check_name(const struct dns_rr *rr, size_t off, size_t outlen)
{
	char *out = malloc(outlen ? outlen : 1);
	size_t len, i = 0, w = off;

	if (out == NULL)
		abort();
	if (dns_rr_name(rr, off, out, outlen) == -1) {
		free(out);
		return;
	}
	len = strnlen(out, outlen);
	FUZZ_CHECK(
	    len < outlen, "name not NUL-terminated in %zu bytes", outlen);
	/* the wire name is at most 255 octets (RFC 1035 3.1), so the text
	 * fits AG_DNS_MAX_NAME and is a valid name */
	if (strcmp(out, ".") != 0 && !dns_name_valid(out))
		fuzz_fail(__FILE__, __LINE__, "dns_name_valid(out)",
		    "invalid name '%s' (%zu bytes) from rdata at offset %zu",
		    fuzz_escape(out, len), len, off);
	/* Encode back: label by label, it must be the wire form read. */
	if (strcmp(out, ".") == 0)
		i = len;
	while (i < len) {
		size_t l = strcspn(out + i, ".");

		FUZZ_CHECK(w < rr->len && rr->data[w] == l &&
			w + 1 + l <= rr->len &&
			memcmp(rr->data + w + 1, out + i, l) == 0,
		    "label '%.*s' is not the wire label at %zu", (int)l,
		    out + i, w);
		w += 1 + l;
		i += l + (out[i + l] == '.');
	}
	FUZZ_CHECK(w < rr->len && rr->data[w] == 0,
	    "name does not end at the wire root label (offset %zu)", w);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t outlens[] = {0, 1, 2, 16, 64, AG_DNS_MAX_NAME + 1,
	    AG_DNS_MAX_NAME + 2, 256, 1025};
	static const int types[] = {
	    AG_DNS_T_A, AG_DNS_T_AAAA, AG_DNS_T_TXT, AG_DNS_T_MX};
	struct fuzz_reader r = {data, size};
	uint8_t ctl = fr_byte(&r), offb = fr_byte(&r);
	unsigned char *rd = malloc(r.n ? r.n : 1);
	struct dns_rr rr;
	struct arena *a;
	size_t offs[6], i, j;
	char *text;

	if (rd == NULL || (a = arena_new(1024)) == NULL)
		abort();
	memcpy(rd, r.p, r.n);
	rr.data = rd;
	rr.len = r.n;

	check_txt(a, &rr);
	check_addr(&rr, types[ctl & 3]);
	offs[0] = 0;
	offs[1] = 1;
	offs[2] = 2;
	offs[3] = offb;
	offs[4] = rr.len ? rr.len - 1 : 0;
	offs[5] = rr.len;
	for (i = 0; i < 6; i++)
		for (j = 0; j < sizeof(outlens) / sizeof(outlens[0]); j++)
			check_name(&rr, offs[i], outlens[j]);

	/* The rdata as a presentation name: no crash, nothing more. */
	if ((text = strndup((const char *)rd, rr.len)) == NULL)
		abort();
	(void)dns_name_valid(text);
	free(text);
	arena_free(a);
	free(rd);
	return 0;
}
