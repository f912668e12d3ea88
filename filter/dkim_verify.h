/*
 * dkim_verify.h - the DKIM verification check (RFC 6376, RFC 8463).
 *
 * Every DKIM-Signature of mail from external clients is verified by
 * libopendkim (up to dkim_max_signatures; the rest are reported as not
 * checked). The key of each signature is looked up as soon as its header
 * is seen; libopendkim's own DNS goes through dns.c (its query hooks,
 * answered from our cache). The body is hashed as it streams. Each
 * signature becomes a typed result in m->dkim and one A-R result.
 */
#ifndef AG_DKIM_VERIFY_H
#define AG_DKIM_VERIFY_H

#include "checks.h"

extern const struct check dkimv_check;


#endif
