/*
 * cli.h - `authgate check`: the daemon's pipeline on one message file.
 *
 * Reads the message, feeds it through the same conn/msg calls the milter
 * adapter uses, and prints what the MTA would be told: each header added
 * ("Name: value", unfolded), "removed: Name" for each header removed,
 * informational lines, then "action: ...". A stable interface: tests,
 * benchmarks and admins parse it.
 */
#ifndef AG_CLI_H
#define AG_CLI_H

/* cli_check - run `authgate check`; argv without the word "check".
 * Returns the exit code: 0 for any verdict, 2 for usage/config errors. */
int cli_check(int argc, char **argv);

#endif
