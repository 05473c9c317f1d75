/* Commands about the gateway's own state: settings (get, set, factory
 * reset), the file folder (certificates), reboot and firmware upgrade.
 * Settings change through settings_set_json only: the settings module tells
 * its subscribers itself. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ops_int.h"
#include "sg/files.h"
#include "sg/log.h"
#include "sg/settings.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define FILE_HELP "a plain file name ([A-Za-z0-9._-], not starting with '.', at most 63 characters)"
#define CERT_MAX (16 * 1024)
#define URI_MAX 512

/* ---- settings ---- */

/* {"settings": {…}} without secrets. */
static void run_get_settings(struct ops_call *c, json_t *args)
{
	json_t *doc =
	    json_pack("{s:o}", "settings", settings_to_json(ops_call_env(c)->settings, false));

	(void)args;
	if (doc)
		ops_reply(c, doc);
	else
		ops_fail(c, OPS_INTERNAL, "out of memory");
}

/* {"result": "ok", "changed": [keys]}; all or nothing. */
static void run_set_settings(struct ops_call *c, json_t *args)
{
	json_t *inner = json_object_get(args, "settings"), *set, *changed, *v;
	char err[OPS_MSG_MAX] = "";
	const char *key;
	int r;

	/* {"cmd": "set_settings", "settings": {…}}: the get_settings shape. */
	if (inner && json_object_size(args) == 2) {
		set = json_incref(inner);
	} else {
		set = json_copy(args);
		json_object_del(set, "cmd");
	}
	if (!json_object_size(set)) {
		json_decref(set);
		ops_fail(c, OPS_BAD_REQUEST, "no settings given: send {\"<key>\": <value>, …}");
		return;
	}
	changed = json_array();
	json_object_foreach(set, key, v)
	{
		json_array_append_new(changed, json_string(key));
	}
	r = settings_set_json(ops_call_env(c)->settings, set, err, sizeof(err));
	json_decref(set);
	if (r < 0) {
		json_decref(changed);
		ops_fail(c, r == -EINVAL ? OPS_BAD_REQUEST : OPS_INTERNAL, "%s",
			 err[0] ? err : strerror(-r));
		return;
	}
	ops_reply_doc(c, json_pack("{s:s, s:o}", "result", "ok", "changed", changed));
}

/* Every setting back to its default; only when the caller confirms. */
static void run_factory_reset(struct ops_call *c, json_t *args)
{
	int r;

	if (!json_is_true(json_object_get(args, "confirm"))) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "confirm: expected true (a factory reset erases every setting)");
		return;
	}
	r = settings_factory_reset(ops_call_env(c)->settings);
	if (r < 0) {
		ops_fail(c, OPS_INTERNAL, "factory reset failed: %s", strerror(-r));
		return;
	}
	ops_reply_doc(c, json_pack("{s:s}", "result", "settings restored to defaults"));
}

/* ---- the gateway ---- */

/* sgd is a service, not the board: it cannot reboot it, and a restart it
 * faked by exiting would be a clean exit that Restart=on-failure does not
 * restart. An honest error instead. */
static void run_reboot(struct ops_call *c, json_t *args)
{
	(void)args;
	ops_fail(c, OPS_NOT_IMPLEMENTED,
		 "reboot is not supported by sgd; restart the service with systemctl restart sgd");
}

static bool cert_name_ok(const char *name)
{
	static const char *const ext[] = {".pem", ".crt", ".key"};
	size_t n = strlen(name);

	for (size_t i = 0; files_name_ok(name) && i < N(ext); i++)
		if (n > 4 && !strcmp(name + n - 4, ext[i]))
			return true;
	return false;
}

/* At least one complete PEM block: "-----BEGIN X-----" and, after it, the
 * matching "-----END X-----" (a cut-off paste is refused, not stored). */
static bool pem_ok(const char *text)
{
	const char *b = strstr(text, "-----BEGIN "), *label, *dash;
	char end[96];
	int n;

	if (!b)
		return false;
	label = b + 11;
	dash = strstr(label, "-----");
	n = dash ? (int)(dash - label) : 0;
	if (n < 1 || n > 64 || memchr(label, '\n', (size_t)n))
		return false;
	snprintf(end, sizeof(end), "-----END %.*s-----", n, label);
	return strstr(dash + 5, end) != NULL;
}

/* Certificates and keys go to the file-manager folder only, by plain name. */
static void run_write_cert(struct ops_call *c, json_t *args)
{
	const char *name = json_string_value(json_object_get(args, "name"));
	const char *cert = json_string_value(json_object_get(args, "cert"));
	char clipped[40];
	int r;

	if (!cert_name_ok(name)) {
		ops_fail(c, OPS_BAD_REQUEST, "name '%s': expected %s ending in .pem, .crt or .key",
			 ops_clip(name, clipped, sizeof(clipped)), FILE_HELP);
		return;
	}
	if (!pem_ok(cert)) {
		ops_fail(c, OPS_BAD_REQUEST,
			 "cert: expected PEM text (-----BEGIN <label>----- … -----END "
			 "<label>-----)");
		return;
	}
	r = files_write(ops_call_env(c)->conf->state_dir, name, cert, strlen(cert));
	if (r < 0) {
		ops_fail(c, OPS_INTERNAL, "cannot store %s: %s", name, strerror(-r));
		return;
	}
	log_notice("%s written to the file folder", name);
	ops_reply_doc(c, json_pack("{s:s, s:s}", "result", "ok", "name", name));
}

static bool file_present(const char *state_dir, const char *name)
{
	char path[CONF_PATH_MAX + FILES_NAME_MAX + 16];
	struct stat st;

	return files_path(state_dir, name, path, sizeof(path)) == 0 && stat(path, &st) == 0 &&
	       S_ISREG(st.st_mode);
}

/* Arguments are checked so a client learns about its mistakes; the upgrade
 * itself does not exist yet and says so. */
static void run_upgrade(struct ops_call *c, json_t *args)
{
	const char *uri = json_string_value(json_object_get(args, "uri"));
	const char *cert = json_string_value(json_object_get(args, "cert"));
	char clipped[40];

	if (strncmp(uri, "https://", 8) || !uri[8] || !ops_printable(uri))
		ops_fail(c, OPS_BAD_REQUEST, "uri: expected an https:// URI of the image");
	else if (!files_name_ok(cert))
		ops_fail(c, OPS_BAD_REQUEST, "cert: expected %s", FILE_HELP);
	else if (!file_present(ops_call_env(c)->conf->state_dir, cert))
		ops_fail(c, OPS_BAD_REQUEST, "cert: %s is not in the file folder",
			 ops_clip(cert, clipped, sizeof(clipped)));
	else
		ops_fail(c, OPS_NOT_IMPLEMENTED, "upgrade is not built yet");
}

/* ---- the table ---- */

/* set_settings: {"<key>": value, …} or the get_settings shape
 * {"settings": {…}}; every key is checked by settings_set_json. */
static const struct ops_arg set_settings_args[] = {
    {"settings", OPS_T_OBJECT, 0, 0, 0, "an object of settings"},
    {NULL},
};

/* factory_reset erases every setting: the caller confirms. */
static const struct ops_arg factory_args[] = {
    {"confirm", OPS_T_BOOL, OPS_REQUIRED, 0, 0, "true: every setting is erased"},
    {NULL},
};

static const struct ops_arg cert_args[] = {
    {"name", OPS_T_STR, OPS_REQUIRED, 1, FILES_NAME_MAX - 1,
     FILE_HELP " ending in .pem, .crt or .key"},
    {"cert", OPS_T_STR, OPS_REQUIRED, 1, CERT_MAX, "PEM text of at most 16384 bytes"},
    {NULL},
};

static const struct ops_arg upgrade_args[] = {
    {"uri", OPS_T_STR, OPS_REQUIRED, 1, URI_MAX, "an https:// URI of the image"},
    {"cert", OPS_T_STR, OPS_REQUIRED, 1, FILES_NAME_MAX - 1, FILE_HELP},
    {NULL},
};

const struct ops_def ops_settings_defs[] = {
    {"get_settings", NULL, 0, run_get_settings},
    {"set_settings", set_settings_args, OPS_ARGS_OPEN, run_set_settings},
    {"factory_reset", factory_args, 0, run_factory_reset},
    {"reboot", NULL, 0, run_reboot},
    {"write_cert", cert_args, 0, run_write_cert},
    {"upgrade_app", upgrade_args, 0, run_upgrade},
    {NULL},
};
