/* Board configuration (/etc/sg/sgd.conf): what the installer sets once —
 * serial devices, paths, bind addresses. "key = value" lines, '#' comments;
 * unknown keys and bad values are refused with FILE:LINE in the message. */
#ifndef SG_CONF_H
#define SG_CONF_H

#include <stddef.h>

#define CONF_PATH_MAX 256
#define CONF_DEFAULT_PATH "/etc/sg/sgd.conf"

enum conf_bus { CONF_BUS_LEFT_IR, CONF_BUS_RIGHT_IR, CONF_BUS_RS485, CONF_BUS_COUNT };

struct conf {
	char serial[CONF_BUS_COUNT][CONF_PATH_MAX]; /* serial_left_ir, serial_right_ir, serial_rs485
						       ("" = absent) */
	char state_dir[CONF_PATH_MAX];		    /* state_dir, default /var/lib/sgd */
	char ctl_socket[CONF_PATH_MAX];		    /* ctl_socket, default /run/sgd/sgd.sock */
	char devices_dir[CONF_PATH_MAX];	    /* devices_dir, default /etc/sg/devices */
	char www_dir[CONF_PATH_MAX];		    /* www_dir, default /usr/share/sgd/www */
	char http_bind[64];			    /* http_bind, default 0.0.0.0 */
	char modbus_tcp_bind[64];		    /* modbus_tcp_bind, default 0.0.0.0 */
	char serial_number[16]; /* serial_number, default derived from /etc/machine-id */
	char model_type[16];	/* model_type, default SG-E1 */
	char hw_version[4];	/* hw_version, default D */
	int ir_timeout_ms;	/* ir_timeout_ms, default 500 (50…10000) */
	int rs485_timeout_ms;	/* rs485_timeout_ms, default 300 (20…10000) */
	int right_ir_addr;	/* right_ir_addr: Modbus address of the Right IR Bicom, default 33
				   (1…247) */
	int discovery_port;  /* discovery_port: UDP discovery port, default 33333 (tests move it) */
	int mqtt_buffer_max; /* mqtt_buffer_max: publications kept per link while it is down,
				default 50000 (10…1000000); beyond it the oldest are dropped */
};

/* Fill c with defaults. */
void conf_defaults(struct conf *c);
/* Defaults, then the file at path; 0, or -EINVAL/-errno with "FILE:LINE: msg" in err. */
int conf_load(const char *path, struct conf *c, char *err, size_t errlen);

#endif
