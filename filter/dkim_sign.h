/*
 * dkim_sign.h - the DKIM signing check (RFC 6376, RFC 8463).
 *
 * Mail of internal clients (internal_hosts or SMTP AUTH) whose From:
 * address matches the SigningTable is signed with every matching key of
 * the KeyTable (an RSA and an Ed25519 key give two signatures). Mail of
 * external clients is never signed, whatever it says. Signing handles
 * start at the end of the headers and hash the body as it streams; the
 * DKIM-Signature headers are added at eom. A key that cannot be used is
 * the AG_ERR_KEY failure class (on_key_error).
 */
#ifndef AG_DKIM_SIGN_H
#define AG_DKIM_SIGN_H

#include "checks.h"

extern const struct check dkims_check;

#endif
