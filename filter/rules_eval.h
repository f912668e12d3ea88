/*
 * rules_eval.h - the built-in tests of eval rules, for rules.c.
 */
#ifndef AG_RULES_EVAL_H
#define AG_RULES_EVAL_H

#include <stdbool.h>

struct mime_result;
struct msg;
struct rule;

/* rules_eval - does the eval rule r hit on m (res: its MIME walk)? */
bool rules_eval(
    struct msg *m, const struct rule *r, const struct mime_result *res);

#endif
