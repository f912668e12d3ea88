/*
 * spf.h - the SPF check (RFC 7208): MAIL FROM and HELO identities.
 *
 * The record of each identity is looked up at MAIL FROM; while the
 * headers and body come, the lookups its terms need are started as soon as
 * it is in (never waiting for it); it is evaluated by libspf2 behind our
 * DNS layer at the end of the message, from the answers the message kept,
 * and reported into m->spf_mailfrom and
 * m->spf_helo, the A-R header (smtp.mailfrom, smtp.helo) and, when asked,
 * a Received-SPF header. What a result does to the message is policy.c's.
 */
#ifndef AG_SPF_H
#define AG_SPF_H

#include "checks.h"

extern const struct check spf_check;

#endif
