/*
 * policy.h - results + score + config -> one action and the header edits.
 *
 * The only place a message's fate is decided: every failure class
 * (AG_ERR_*) maps to an action from the configuration here, and every
 * reply code and text is chosen here. Writes m->verdict, allocated in the
 * message arena. Safe in any thread.
 */
#ifndef AG_POLICY_H
#define AG_POLICY_H

struct msg;

void policy_decide(struct msg *);

#endif
