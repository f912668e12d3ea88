/*
 * dkim_int.h - what dkim_verify.c and dkim_sign.c share: feeding the
 * received headers to a libopendkim handle. Private to the DKIM checks.
 */
#ifndef AG_DKIM_INT_H
#define AG_DKIM_INT_H

#include <opendkim/dkim.h>

struct msg;

/*
 * dkimv_feed_headers - every stored header as "Name:value" (the value as
 * the MTA sent it: leading space and CRLF folds kept), then end of header.
 * Returns the first non-OK status of libopendkim, or DKIM_STAT_OK.
 */
DKIM_STAT dkimv_feed_headers(DKIM *, const struct msg *);

/* dkimv_handle_defer - dkim_free the handle when the message ends */
int dkimv_handle_defer(struct msg *, DKIM *);

#endif
