/* sgctl's command table: local validation before anything reaches sgd. */
#ifndef SGCTL_CMD_H
#define SGCTL_CMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

/* Exit codes (also listed by `sgctl help`). */
enum {
	EXIT_OK = 0,	  /* sgd carried out the command */
	EXIT_FAILED = 1,  /* sgd answered with an error */
	EXIT_USAGE = 2,	  /* bad command line; sgd was not contacted */
	EXIT_CONNECT = 3, /* the control socket could not be reached */
	EXIT_REPLY = 4,	  /* timeout, or a closed, garbled or oversized reply */
};

struct cmd {
	const char *name;
	const char *args; /* for the usage line */
	const char *help;
	/* 0 when argv (argv[0] = command) is acceptable, else prints why to stderr. */
	int (*check)(int argc, char *const argv[]);
	/* The command object sent to sgd (sg/ctl.h) for a checked argv; NULL
	 * after printing why to stderr. */
	json_t *(*build)(int argc, char *const argv[]);
};

/* The command named name, or NULL. */
const struct cmd *cmd_find(const char *name);
/* Print every command with its arguments and description. */
void cmd_print_all(FILE *out);
/* Validate argv for c; on failure print a one-line reason and the command's
 * usage line to stderr and return -EINVAL. */
int cmd_check(const struct cmd *c, int argc, char *const argv[]);
/* The JSON command object (sg/ops.h names and members) for argv, which
 * cmd_check accepted; NULL after printing why to stderr. "settings KEY"
 * asks for every setting (sgctl picks KEY from the reply); "tariffs set FILE"
 * lacks "tariffs", which the caller adds from FILE's text. */
json_t *cmd_request(const struct cmd *c, int argc, char *const argv[]);

#endif
