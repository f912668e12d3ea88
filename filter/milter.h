/*
 * milter.h - the libmilter adapter: registration and the callbacks.
 *
 * The callbacks only translate between libmilter and the conn/msg calls
 * of msgctx.h and carry out the verdict. They negotiate the no-reply
 * flags so the MTA never waits for a reply we have nothing to say in,
 * keep header bytes exact (SMFIP_HDR_LEADSPC) and request only the macros
 * they read.
 */
#ifndef AG_MILTER_H
#define AG_MILTER_H

/* milter_register - smfi_register() with our callbacks; -1 on failure. */
int milter_register(void);

/* milter_active - connections currently open (for the SIGTERM drain). */
int milter_active(void);

#endif
