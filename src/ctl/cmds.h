/* Commands split across files of the control server. */
#ifndef SG_CTL_CMDS_H
#define SG_CTL_CMDS_H

#include "sg/ctlsrv.h"

/* Reply to a client when an on-demand device operation finishes. */
void ctl_op_done(int err, const char *msg, json_t *res, void *arg);
/* scan [options] [--add-all] */
void ctl_cmd_scan(struct app *a, struct ctl_client *c, int argc, const char *const *argv);
/* set-parameters ADDR MODEL [key=value…] */
void ctl_cmd_set_parameters(struct app *a, struct ctl_client *c, int argc, const char *const *argv);
/* load-profile N [--from] [--to] [--csv] */
void ctl_cmd_load_profile(struct app *a, struct ctl_client *c, int argc, const char *const *argv);
/* recorder list | show N [options] | clear N */
void ctl_cmd_recorder(struct app *a, struct ctl_client *c, int argc, const char *const *argv);
/* tariffs show | set TEXT */
void ctl_cmd_tariffs(struct app *a, struct ctl_client *c, int argc, const char *const *argv);
/* calculate N [--from] [--to] [--csv] */
void ctl_cmd_calculate(struct app *a, struct ctl_client *c, int argc, const char *const *argv);
/* clock WALL_MS [RATE] (test hook) */
void ctl_cmd_clock(struct app *a, struct ctl_client *c, int argc, const char *const *argv);
/* modbus read|write … */
void ctl_cmd_modbus(struct app *a, struct ctl_client *c, int argc, const char *const *argv);

#endif
