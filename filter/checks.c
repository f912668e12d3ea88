/*
 * checks.c - THE check table: the one place a check is registered.
 *
 * Order is stage order within each stage: a check may read the results of
 * the checks before it (DMARC reads SPF and DKIM; rules read all).
 */
#include <stddef.h>

#include "checks.h"
#include "dkim_sign.h"
#include "dkim_verify.h"
#include "dmarc.h"
#include "metrics.h"
#include "rules.h"
#include "spf.h"

const struct check *const checks_table[] = {
    &spf_check,
    &dkimv_check,
    &dmarc_check,
    &rules_check,
    &dkims_check,
    &metrics_check,
    NULL,
};
