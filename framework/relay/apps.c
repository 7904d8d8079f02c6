/*
 * apps.c -- Marathon app definitions: type checks, validation, normalisation.
 *
 * A body from POST or PUT (merged over the current definition for partial
 * updates) is checked member by member: a member of the wrong JSON type is
 * a 400 "Invalid JSON" with Play-style details ("error.expected.jsnumber"),
 * a value Marathon would refuse is a 422 "Object is not valid" with
 * Marathon's messages. What passes is rebuilt in canonical form: every
 * default filled in, legacy "ports" turned into portDefinitions and "uris"
 * into fetch, only keys the python marathon client accepts. Service ports
 * are assigned afterwards (appset.c).
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ID_PATTERN "^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*" \
    "([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$"
#define CMD_ARGS_MSG "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'."

struct checker {
	json_t *type_errs;              /* 400 details */
	json_t *errs;                   /* 422 details */
};

static void add_err(json_t *list, const char *path, const char *msg)
{
	size_t i;
	json_t *e;

	for (i = 0; i < json_array_size(list); i++) {
		e = json_array_get(list, i);
		if (strcmp(bt_json_string(e, "path"), path) == 0) {
			json_array_append_new(json_object_get(e, "errors"), json_string(msg));
			return;
		}
	}
	json_array_append_new(list, json_pack("{s:s, s:[s]}", "path", path, "errors", msg));
}

enum jt { T_STRING, T_NUMBER, T_INT, T_BOOL, T_ARRAY, T_OBJECT };

static const char *expected_name(enum jt t)
{
	switch (t) {
	case T_STRING: return "error.expected.jsstring";
	case T_NUMBER: return "error.expected.jsnumber";
	case T_INT: return "error.expected.jsnumber";
	case T_BOOL: return "error.expected.jsboolean";
	case T_ARRAY: return "error.expected.jsarray";
	default: return "error.expected.jsobject";
	}
}

static bool is_type(const json_t *v, enum jt t)
{
	switch (t) {
	case T_STRING: return json_is_string(v);
	case T_NUMBER: return json_is_number(v);
	/* Marathon's integers are 32-bit: anything else does not read as one */
	case T_INT: return json_is_number(v) && json_number_value(v) == floor(json_number_value(v)) &&
	    fabs(json_number_value(v)) <= INT32_MAX;
	case T_BOOL: return json_is_boolean(v);
	case T_ARRAY: return json_is_array(v);
	default: return json_is_object(v);
	}
}

/* the member when present (not null) and of type t; records a type error otherwise */
static json_t *get(struct checker *c, const json_t *obj, const char *key, enum jt t,
    const char *prefix)
{
	json_t *v = json_object_get(obj, key);
	char *path;

	if (v == NULL || json_is_null(v))
		return NULL;
	if (is_type(v, t))
		return v;
	path = xasprintf("%s/%s", prefix, key);
	add_err(c->type_errs, path, expected_name(t));
	free(path);
	return NULL;
}

static bool label_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

static bool segment_ok(const char *s, size_t n)
{
	size_t start = 0, i;

	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return true;
	for (i = 0; i <= n; i++) {
		if (i == n || s[i] == '.') {
			if (!label_ok(s + start, i - start))
				return false;
			start = i + 1;
		}
	}
	return true;
}

char *relay_app_id_absolute(const char *id)
{
	char *out = xmalloc(strlen(id) + 2);
	size_t n = 0;
	const char *p;

	out[n++] = '/';
	for (p = id; *p != '\0'; p++) {
		if (*p == '/' && out[n - 1] == '/')
			continue;
		out[n++] = *p;
	}
	while (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	return out;
}

static void check_id(struct checker *c, const char *id)
{
	const char *p = id + 1, *slash;

	if (strcmp(id, "/") == 0) {
		add_err(c->errs, "/id", "Path must contain at least one path element");
		return;
	}
	while (*p != '\0') {
		slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (!segment_ok(p, n)) {
			add_err(c->errs, "/id", "must fully match regular expression '" ID_PATTERN "'");
			return;
		}
		p += n;
		if (*p == '/')
			p++;
	}
}

char *relay_app_safe_id(const char *id)
{
	char *s = xstrdup(id[0] == '/' ? id + 1 : id);
	char *p;

	for (p = s; *p != '\0'; p++)
		if (*p == '/')
			*p = '_';
	return s;
}

static void min_check(struct checker *c, const char *path, double v, double min)
{
	char *msg;

	if (v >= min)
		return;
	msg = xasprintf("got %g, expected %g or more", v, min);
	add_err(c->errs, path, msg);
	free(msg);
}

/* a number member with a default and a lower bound */
static double number(struct checker *c, const json_t *a, const char *key, double def, double min)
{
	json_t *v = get(c, a, key, T_NUMBER, "");
	char *path;

	if (v == NULL)
		return def;
	path = xasprintf("/%s", key);
	min_check(c, path, json_number_value(v), min);
	free(path);
	return json_number_value(v);
}

static json_t *string_map(struct checker *c, const json_t *a, const char *key, bool secrets_ok)
{
	json_t *v = get(c, a, key, T_OBJECT, ""), *out = json_object(), *val;
	const char *k;

	if (v == NULL)
		return out;
	json_object_foreach(v, k, val) {
		if (json_is_string(val) || (secrets_ok && json_is_object(val) &&
		    json_is_string(json_object_get(val, "secret")))) {
			json_object_set(out, k, val);
		} else {
			char *path = xasprintf("/%s/%s", key, k);
			add_err(c->type_errs, path, "error.expected.jsstring");
			free(path);
		}
	}
	return out;
}

static json_t *string_list(struct checker *c, const json_t *a, const char *key)
{
	json_t *v = get(c, a, key, T_ARRAY, ""), *out = json_array(), *item;
	size_t i;

	json_array_foreach(v, i, item) {
		if (json_is_string(item)) {
			json_array_append(out, item);
		} else {
			char *path = xasprintf("/%s(%zu)", key, i);
			add_err(c->type_errs, path, "error.expected.jsstring");
			free(path);
		}
	}
	return out;
}

static bool extractable(const char *uri)
{
	static const char *exts[] = { ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz",
	    ".zip", NULL };
	int i;

	for (i = 0; exts[i] != NULL; i++)
		if (bt_str_has_suffix(uri, exts[i]))
			return true;
	return false;
}

static json_t *fetch_list(struct checker *c, const json_t *a)
{
	json_t *fetch = get(c, a, "fetch", T_ARRAY, ""), *uris = json_object_get(a, "uris");
	json_t *out = json_array(), *item;
	size_t i;

	if (fetch != NULL && json_array_size(uris) > 0)
		add_err(c->errs, "/", "cannot specify both uris and fetch fields");
	json_array_foreach(fetch, i, item) {
		const char *uri = bt_json_string(item, "uri");
		if (uri == NULL) {
			char *path = xasprintf("/fetch(%zu)/uri", i);
			add_err(c->type_errs, path, "error.path.missing");
			free(path);
			continue;
		}
		json_t *f = json_pack("{s:s, s:b, s:b, s:b}", "uri", uri,
		    "extract", json_is_false(json_object_get(item, "extract")) ? 0 : 1,
		    "executable", json_is_true(json_object_get(item, "executable")),
		    "cache", json_is_true(json_object_get(item, "cache")));
		if (bt_json_string(item, "destPath") != NULL)
			json_object_set_new(f, "destPath", json_string(bt_json_string(item, "destPath")));
		json_array_append_new(out, f);
	}
	if (fetch == NULL && uris != NULL) {
		json_t *list = string_list(c, a, "uris");
		json_array_foreach(list, i, item)
			json_array_append_new(out, json_pack("{s:s, s:b, s:b, s:b}", "uri",
			    json_string_value(item), "extract", extractable(json_string_value(item)),
			    "executable", 0, "cache", 0));
		json_decref(list);
	}
	return out;
}

static bool protocol_ok(const char *p)
{
	return strcmp(p, "tcp") == 0 || strcmp(p, "udp") == 0 || strcmp(p, "udp,tcp") == 0;
}

static json_t *port_definitions(struct checker *c, const json_t *a, bool host_net)
{
	json_t *pd = get(c, a, "portDefinitions", T_ARRAY, "");
	json_t *ports = get(c, a, "ports", T_ARRAY, "");
	json_t *out = json_array(), *item, *names = json_object();
	size_t i;

	if (pd != NULL && ports != NULL && json_array_size(ports) > 0 && json_array_size(pd) > 0)
		add_err(c->errs, "/", "cannot specify both ports and port definitions");
	if (pd == NULL && ports == NULL && host_net)
		json_array_append_new(out, json_pack("{s:i, s:s, s:s, s:{}}", "port", 0,
		    "protocol", "tcp", "name", "default", "labels"));
	json_array_foreach(ports, i, item) {
		if (!json_is_integer(item) || json_integer_value(item) < 0 ||
		    json_integer_value(item) > 65535) {
			char *path = xasprintf("/ports(%zu)", i);
			add_err(c->type_errs, path, "error.expected.jsnumber");
			free(path);
			continue;
		}
		json_array_append_new(out, json_pack("{s:I, s:s, s:{}}", "port",
		    json_integer_value(item), "protocol", "tcp", "labels"));
	}
	json_array_foreach(pd, i, item) {
		char *path = xasprintf("/portDefinitions(%zu)", i);
		json_t *port = get(c, item, "port", T_INT, path);
		json_t *proto = get(c, item, "protocol", T_STRING, path);
		json_t *name = get(c, item, "name", T_STRING, path);
		json_t *labels = get(c, item, "labels", T_OBJECT, path);
		json_int_t p = port ? (json_int_t)json_number_value(port) : 0;
		json_t *d;

		if (p < 0 || p > 65535)
			add_err(c->errs, path, "port must be between 0 and 65535");
		if (proto != NULL && !protocol_ok(json_string_value(proto)))
			add_err(c->errs, path, "protocol must be one of tcp, udp or udp,tcp");
		d = json_pack("{s:I, s:s}", "port", p, "protocol",
		    proto ? json_string_value(proto) : "tcp");
		if (name != NULL) {
			if (json_object_get(names, json_string_value(name)) != NULL)
				add_err(c->errs, "/portDefinitions", "Port names must be unique.");
			json_object_set_new(names, json_string_value(name), json_true());
			json_object_set(d, "name", name);
		}
		json_object_set_new(d, "labels", labels ? json_deep_copy(labels) : json_object());
		json_array_append_new(out, d);
		free(path);
	}
	json_decref(names);
	return out;
}

static const char *const hc_protocols[] = { "HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP",
	"MESOS_HTTPS", "MESOS_TCP", NULL };

/* protocol names match case-insensitively, as Marathon's enum reader does */
static const char *hc_protocol(struct checker *c, const json_t *hc, const char *p)
{
	json_t *v = get(c, hc, "protocol", T_STRING, p);
	char *path;
	int k;

	if (v == NULL)
		return json_object_get(hc, "command") != NULL ? "COMMAND" : "HTTP";
	for (k = 0; hc_protocols[k] != NULL; k++)
		if (strcasecmp(hc_protocols[k], json_string_value(v)) == 0)
			return hc_protocols[k];
	path = xasprintf("%s/protocol", p);
	add_err(c->type_errs, path, "error.unknown.enum.literal");
	free(path);
	return "HTTP";
}

/* the port or portIndex of a check that targets a port */
static void hc_port(struct checker *c, const json_t *hc, json_t *h, const char *p, size_t nports)
{
	json_t *port = get(c, hc, "port", T_INT, p), *idx = get(c, hc, "portIndex", T_INT, p);
	char *path;
	json_int_t n;

	if (port != NULL && idx != NULL)
		add_err(c->errs, p, "HealthCheck must specify either a port or a portIndex");
	if (port != NULL) {
		n = json_integer_value(port);
		path = xasprintf("%s/port", p);
		min_check(c, path, (double)n, 0);
		if (n > 65535) {
			char *msg = xasprintf("got %lld, expected 65535 or less", (long long)n);
			add_err(c->errs, path, msg);
			free(msg);
		}
		free(path);
		json_object_set_new(h, "port", json_integer(n));
		return;
	}
	n = idx != NULL ? json_integer_value(idx) : 0;
	if (n < 0 || (size_t)n >= nports)
		add_err(c->errs, p, "Health check port indices must address an element of the "
		    "ports array or container port mappings.");
	json_object_set_new(h, "portIndex", json_integer(n));
}

static json_t *health_check(struct checker *c, const json_t *hc, const char *p, size_t nports,
    int *mesos_checks)
{
	static const char *const nums[] = { "gracePeriodSeconds", "intervalSeconds",
		"timeoutSeconds", "maxConsecutiveFailures", "delaySeconds", NULL };
	static const int defaults[] = { 300, 60, 20, 3, 15 };
	const char *proto = hc_protocol(c, hc, p);
	json_t *h = json_pack("{s:s}", "protocol", proto), *v, *cmd;
	char *path;
	int k;

	for (k = 0; nums[k] != NULL; k++) {
		v = get(c, hc, nums[k], T_INT, p);
		path = xasprintf("%s/%s", p, nums[k]);
		if (v != NULL)
			min_check(c, path, (double)json_integer_value(v), 0);
		free(path);
		json_object_set_new(h, nums[k], v != NULL ? json_integer(json_integer_value(v)) :
		    json_integer(defaults[k]));
	}
	if (strcmp(proto, "COMMAND") == 0) {
		cmd = get(c, hc, "command", T_OBJECT, p);
		path = xasprintf("%s/command", p);
		v = cmd != NULL ? get(c, cmd, "value", T_STRING, path) : NULL;
		free(path);
		if (v == NULL)
			add_err(c->errs, p, "A command is required when using the COMMAND protocol");
		else
			json_object_set_new(h, "command", json_pack("{s:O}", "value", v));
		return h;
	}
	if (bt_str_has_prefix(proto, "MESOS_"))
		(*mesos_checks)++;
	hc_port(c, hc, h, p, nports);
	if (strstr(proto, "HTTP") != NULL) {
		v = get(c, hc, "path", T_STRING, p);
		json_object_set_new(h, "path", json_string(v != NULL ? json_string_value(v) : "/"));
	}
	if (strcmp(proto, "HTTP") == 0 || strcmp(proto, "HTTPS") == 0) {
		v = get(c, hc, "ignoreHttp1xx", T_BOOL, p);
		json_object_set_new(h, "ignoreHttp1xx", json_boolean(v != NULL && json_is_true(v)));
	}
	if (bt_str_has_prefix(proto, "MESOS_")) {
		v = get(c, hc, "ipProtocol", T_STRING, p);
		json_object_set_new(h, "ipProtocol", json_string(v != NULL ? json_string_value(v) :
		    "IPv4"));
	}
	return h;
}

/*
 * healthChecks: Marathon's defaults filled in, the members each protocol
 * has, and Marathon's rules (one port reference, a port index that exists,
 * at most one MESOS_* check besides COMMAND ones).
 */
static json_t *health_checks(struct checker *c, const json_t *a, size_t nports)
{
	json_t *list = get(c, a, "healthChecks", T_ARRAY, ""), *out = json_array(), *hc;
	int mesos_checks = 0;
	size_t i;

	json_array_foreach(list, i, hc) {
		char *path = xasprintf("/healthChecks(%zu)", i);
		if (!json_is_object(hc))
			add_err(c->type_errs, path, "error.expected.jsobject");
		else
			json_array_append_new(out, health_check(c, hc, path, nports, &mesos_checks));
		free(path);
	}
	if (mesos_checks > 1)
		add_err(c->errs, "/", "AppDefinition can contain at most one Mesos health check");
	return out;
}

/* the names of out's ports (port definitions or port mappings) include name */
static bool has_port_name(const json_t *out, const char *name)
{
	json_t *pds = json_object_get(out, "portDefinitions"), *p;
	json_t *pms = json_object_get(json_object_get(out, "container"), "portMappings");
	size_t i;

	json_array_foreach(json_array_size(pds) > 0 ? pds : pms, i, p)
		if (bt_json_string(p, "name") != NULL && strcmp(bt_json_string(p, "name"), name) == 0)
			return true;
	return false;
}

static json_int_t member_int(struct checker *c, const json_t *obj, const char *key,
    const char *prefix, json_int_t def)
{
	json_t *v = get(c, obj, key, T_INT, prefix);

	return v != NULL ? (json_int_t)json_number_value(v) : def;
}

/* Marathon's readinessChecks: at most one, HTTP or HTTPS on a named port */
static json_t *readiness_checks(struct checker *c, const json_t *a, const json_t *out)
{
	json_t *list = get(c, a, "readinessChecks", T_ARRAY, ""), *res = json_array(), *rc, *v;
	const char *proto, *port;
	char *p;
	size_t i;

	if (json_array_size(list) > 1)
		add_err(c->errs, "/readinessChecks", "must have at most 1 element");
	json_array_foreach(list, i, rc) {
		p = xasprintf("/readinessChecks(%zu)", i);
		if (!json_is_object(rc)) {
			add_err(c->type_errs, p, "error.expected.jsobject");
			free(p);
			continue;
		}
		v = get(c, rc, "protocol", T_STRING, p);
		proto = v != NULL ? json_string_value(v) : "HTTP";
		if (strcmp(proto, "HTTP") != 0 && strcmp(proto, "HTTPS") != 0)
			add_err(c->errs, p, "protocol must be HTTP or HTTPS");
		v = get(c, rc, "portName", T_STRING, p);
		port = v != NULL ? json_string_value(v) : "http-api";
		if (!has_port_name(out, port))
			add_err(c->errs, p, "readinessCheck's portName must be the name of one of the app's ports");
		json_array_append_new(res, json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b}",
		    "name", bt_json_string(rc, "name") ? bt_json_string(rc, "name") : "readinessCheck",
		    "protocol", proto, "path", bt_json_string(rc, "path") ? bt_json_string(rc, "path") :
		    "/", "portName", port,
		    "intervalSeconds", json_integer(member_int(c, rc, "intervalSeconds", p, 30)),
		    "timeoutSeconds", json_integer(member_int(c, rc, "timeoutSeconds", p, 10)),
		    "httpStatusCodesForReady", (v = get(c, rc, "httpStatusCodesForReady", T_ARRAY, p)) ?
		    json_incref(v) : json_pack("[i]", 200),
		    "preserveLastResponse", json_is_true(json_object_get(rc, "preserveLastResponse"))));
		rc = json_array_get(res, json_array_size(res) - 1);
		if (json_integer_value(json_object_get(rc, "timeoutSeconds")) >=
		    json_integer_value(json_object_get(rc, "intervalSeconds")))
			add_err(c->errs, p, "timeoutSeconds must be less than intervalSeconds");
		free(p);
	}
	return res;
}

/* a LIKE/UNLIKE pattern placement.c can use: POSIX extended, Java's \d and \D allowed */
static bool regex_valid(const char *pattern)
{
	char *tr = xmalloc(strlen(pattern) * 6 + 1), *p = tr;
	const char *s;
	regex_t re;
	bool ok;

	for (s = pattern; *s != '\0'; s++) {
		if (s[0] == '\\' && (s[1] == 'd' || s[1] == 'D')) {
			p += sprintf(p, s[1] == 'd' ? "[0-9]" : "[^0-9]");
			s++;
		} else if (s[0] == '\\' && s[1] != '\0') {
			*p++ = *s++;
			*p++ = *s;
		} else {
			*p++ = *s;
		}
	}
	*p = '\0';
	ok = regcomp(&re, tr, REG_EXTENDED | REG_NOSUB) == 0;
	if (ok)
		regfree(&re);
	free(tr);
	return ok;
}

static bool is_int(const char *s)
{
	char *end;
	long v;

	if (*s == '\0')
		return false;
	v = strtol(s, &end, 10);
	return *end == '\0' && v >= INT32_MIN && v <= INT32_MAX;
}

/* why Marathon refuses [field, OP, value], or NULL; op is upper case */
static const char *constraint_problem(const char *field, const char *op, const char *value)
{
	static const char *ops[] = { "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER",
	    "IS", NULL };
	const char *p;
	int k;

	if (*field == '\0')
		return "illegal constraint specification";
	for (k = 0; ops[k] != NULL && strcmp(ops[k], op) != 0; k++)
		;
	if (ops[k] == NULL)
		return "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, "
		    "MAX_PER or UNLIKE";
	if (strcmp(op, "UNIQUE") == 0 && value != NULL)
		return "UNIQUE does not accept a value";
	if (strcmp(op, "GROUP_BY") == 0 && value != NULL && !is_int(value))
		return "GROUP BY must define an integer value or else no value at all";
	if (strcmp(op, "MAX_PER") == 0 && (value == NULL || !is_int(value)))
		return "MAX_PER requires an integer value";
	if ((strcmp(op, "LIKE") == 0 || strcmp(op, "UNLIKE") == 0) && (value == NULL || !*value))
		return "LIKE and UNLIKE require a non-empty, regular expression value";
	if ((strcmp(op, "LIKE") == 0 || strcmp(op, "UNLIKE") == 0) && !regex_valid(value))
		return "is not a valid regular expression";
	if (strcmp(op, "IS") == 0) {
		for (p = value ? value : ""; *p != '\0' && (isalnum((unsigned char)*p) ||
		    strchr("_/.-", *p) != NULL); p++)
			;
		if (*p != '\0')
			return "IS only supports Mesos text and float values "
			    "(see http://mesos.apache.org/documentation/latest/attributes-resources/)";
	}
	return NULL;
}

/*
 * Marathon's constraints: 2 or 3 strings each (a number as the value is
 * taken as its text), the operator in any case; answered in upper case.
 */
static json_t *constraints(struct checker *c, const json_t *a)
{
	json_t *list = get(c, a, "constraints", T_ARRAY, ""), *out = json_array(), *item, *s;
	char *path, *op, buf[64];
	const char *why, *value;
	size_t i, j;
	bool typed;

	json_array_foreach(list, i, item) {
		path = xasprintf("/constraints(%zu)", i);
		if (!json_is_array(item)) {
			add_err(c->type_errs, path, "error.expected.jsarray");
			free(path);
			continue;
		}
		if (json_array_size(item) < 2 || json_array_size(item) > 3) {
			add_err(c->errs, path, "Each constraint must have either 2 or 3 fields");
			free(path);
			continue;
		}
		typed = true;
		json_array_foreach(item, j, s)
			if (!json_is_string(s) && !(j == 2 && json_is_number(s))) {
				char *p = xasprintf("%s(%zu)", path, j);
				add_err(c->type_errs, p, "error.expected.jsstring");
				free(p);
				typed = false;
			}
		if (!typed) {
			free(path);
			continue;
		}
		value = json_string_value(json_array_get(item, 2));
		if (json_is_number(json_array_get(item, 2))) {
			snprintf(buf, sizeof buf, "%.15g", json_number_value(json_array_get(item, 2)));
			value = buf;
		}
		op = xstrdup(json_string_value(json_array_get(item, 1)));
		for (j = 0; op[j] != '\0'; j++)
			op[j] = (char)toupper((unsigned char)op[j]);
		why = constraint_problem(json_string_value(json_array_get(item, 0)), op, value);
		if (why != NULL)
			add_err(c->errs, path, why);
		else if (value != NULL)
			json_array_append_new(out, json_pack("[s, s, s]",
			    json_string_value(json_array_get(item, 0)), op, value));
		else
			json_array_append_new(out, json_pack("[s, s]",
			    json_string_value(json_array_get(item, 0)), op));
		free(op);
		free(path);
	}
	return out;
}

static json_t *upgrade_strategy(struct checker *c, const json_t *a)
{
	json_t *u = get(c, a, "upgradeStrategy", T_OBJECT, "");
	double minh = 1, maxo = 1;

	if (u != NULL) {
		json_t *v1 = get(c, u, "minimumHealthCapacity", T_NUMBER, "/upgradeStrategy");
		json_t *v2 = get(c, u, "maximumOverCapacity", T_NUMBER, "/upgradeStrategy");
		minh = v1 ? json_number_value(v1) : 1;
		maxo = v2 ? json_number_value(v2) : 1;
		if (minh > 1)
			add_err(c->errs, "/upgradeStrategy/minimumHealthCapacity", "is greater than 1");
		if (minh < 0)
			add_err(c->errs, "/upgradeStrategy/minimumHealthCapacity", "is less than 0");
		if (maxo > 1)
			add_err(c->errs, "/upgradeStrategy/maximumOverCapacity", "is greater than 1");
		if (maxo < 0)
			add_err(c->errs, "/upgradeStrategy/maximumOverCapacity", "is less than 0");
	}
	return json_pack("{s:f, s:f}", "minimumHealthCapacity", minh, "maximumOverCapacity", maxo);
}

static json_t *unreachable_strategy(struct checker *c, const json_t *a)
{
	json_t *u = json_object_get(a, "unreachableStrategy");
	double ia = 0, ea = 0;

	if (json_is_string(u) && strcmp(json_string_value(u), "disabled") == 0)
		return json_string("disabled");
	u = get(c, a, "unreachableStrategy", T_OBJECT, "");
	if (u != NULL) {
		json_t *v1 = get(c, u, "inactiveAfterSeconds", T_INT, "/unreachableStrategy");
		json_t *v2 = get(c, u, "expungeAfterSeconds", T_INT, "/unreachableStrategy");
		ia = v1 ? json_number_value(v1) : 0;
		ea = v2 ? json_number_value(v2) : 0;
		min_check(c, "/unreachableStrategy/inactiveAfterSeconds", ia, 0);
		min_check(c, "/unreachableStrategy/expungeAfterSeconds", ea, 0);
		if (ia > ea)
			add_err(c->errs, "/unreachableStrategy/inactiveAfterSeconds",
			    "inactiveAfterSeconds must be less or equal to expungeAfterSeconds");
	}
	return json_pack("{s:I, s:I}", "inactiveAfterSeconds", (json_int_t)ia,
	    "expungeAfterSeconds", (json_int_t)ea);
}

/* the command members: cmd or args, and whether a container is there */
static void command(struct checker *c, const json_t *a, json_t *out, bool has_container)
{
	json_t *cmd = get(c, a, "cmd", T_STRING, "");
	json_t *args = json_object_get(a, "args");
	bool has_args = args != NULL && !json_is_null(args);

	if (has_args) {
		json_t *list = string_list(c, a, "args");
		json_object_set_new(out, "args", list);
	}
	if (cmd != NULL)
		json_object_set(out, "cmd", cmd);
	if ((cmd == NULL && !has_args && !has_container) || (cmd != NULL && has_args))
		add_err(c->errs, "/", CMD_ARGS_MSG);
}

static json_t *dependencies(struct checker *c, const json_t *a)
{
	json_t *list = string_list(c, a, "dependencies"), *out = json_array(), *d;
	size_t i;

	json_array_foreach(list, i, d) {
		char *abs = relay_app_id_absolute(json_string_value(d));
		json_array_append_new(out, json_string(abs));
		free(abs);
	}
	json_decref(list);
	return out;
}

static void simple_members(struct checker *c, const json_t *a, json_t *out)
{
	json_t *v;
	const char *ks;

	json_object_set_new(out, "backoffFactor", json_real(number(c, a, "backoffFactor", 1.15, 1)));
	json_object_set_new(out, "backoffSeconds", json_real(number(c, a, "backoffSeconds", 1, 0)));
	json_object_set_new(out, "cpus", json_real(number(c, a, "cpus", 1, 0)));
	json_object_set_new(out, "disk", json_real(number(c, a, "disk", 0, 0)));
	json_object_set_new(out, "env", string_map(c, a, "env", true));
	v = get(c, a, "executor", T_STRING, "");
	json_object_set_new(out, "executor", json_string(v ? json_string_value(v) : ""));
	v = get(c, a, "gpus", T_INT, "");
	json_object_set_new(out, "gpus", json_integer(v ? (json_int_t)json_number_value(v) : 0));
	if (v != NULL)
		min_check(c, "/gpus", json_number_value(v), 0);
	v = get(c, a, "instances", T_INT, "");
	json_object_set_new(out, "instances", json_integer(v ? (json_int_t)json_number_value(v) : 1));
	if (v != NULL)
		min_check(c, "/instances", json_number_value(v), 0);
	json_object_set_new(out, "labels", string_map(c, a, "labels", false));
	json_object_set_new(out, "maxLaunchDelaySeconds",
	    json_real(number(c, a, "maxLaunchDelaySeconds", 300, 0)));
	json_object_set_new(out, "mem", json_real(number(c, a, "mem", 128, 0)));
	v = get(c, a, "requirePorts", T_BOOL, "");
	json_object_set_new(out, "requirePorts", json_boolean(v && json_is_true(v)));
	v = get(c, a, "user", T_STRING, "");
	if (v != NULL)
		json_object_set(out, "user", v);
	v = get(c, a, "killSelection", T_STRING, "");
	ks = v ? json_string_value(v) : "YOUNGEST_FIRST";
	if (strcmp(ks, "YOUNGEST_FIRST") != 0 && strcmp(ks, "OLDEST_FIRST") != 0)
		add_err(c->errs, "/killSelection", "must be one of YOUNGEST_FIRST or OLDEST_FIRST");
	json_object_set_new(out, "killSelection", json_string(ks));
	v = get(c, a, "taskKillGracePeriodSeconds", T_INT, "");
	if (v != NULL) {
		min_check(c, "/taskKillGracePeriodSeconds", json_number_value(v), 0);
		json_object_set_new(out, "taskKillGracePeriodSeconds",
		    json_integer((json_int_t)json_number_value(v)));
	}
	v = get(c, a, "role", T_STRING, "");
	json_object_set_new(out, "role", json_string(v ? json_string_value(v) : "*"));
	if (get(c, a, "acceptedResourceRoles", T_ARRAY, "") != NULL)
		json_object_set_new(out, "acceptedResourceRoles",
		    string_list(c, a, "acceptedResourceRoles"));
	v = get(c, a, "secrets", T_OBJECT, "");
	json_object_set_new(out, "secrets", v ? json_deep_copy(v) : json_object());
}

/* base + body for a partial update; null members of body remove */
static json_t *merge(const json_t *body, const json_t *base)
{
	json_t *m = json_deep_copy(base), *v;
	const char *k;
	static const char *readonly[] = { "version", "versionInfo", "tasks", "tasksStaged",
	    "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "lastTaskFailure", NULL };
	int i;

	for (i = 0; readonly[i] != NULL; i++)
		json_object_del(m, readonly[i]);
	if (json_object_get(body, "ports") != NULL)
		json_object_del(m, "portDefinitions");
	if (json_object_get(body, "cmd") != NULL)
		json_object_del(m, "args");
	if (json_object_get(body, "args") != NULL)
		json_object_del(m, "cmd");
	if (json_object_get(body, "uris") != NULL)
		json_object_del(m, "fetch");
	/* the legacy network forms replace the canonical networks */
	if (json_object_get(body, "ipAddress") != NULL || (json_object_get(body, "networks") == NULL &&
	    json_object_get(json_object_get(json_object_get(body, "container"), "docker"), "network")))
		json_object_del(m, "networks");
	json_object_foreach((json_t *)body, k, v) {
		if (json_is_null(v))
			json_object_del(m, k);
		else
			json_object_set(m, k, v);
	}
	return m;
}

static bool is_host_network(const json_t *nets)
{
	const char *mode = bt_json_string(json_array_get(nets, 0), "mode");
	return mode == NULL || strcmp(mode, "host") == 0;
}

/* the canonical app; errors land in c */
static json_t *build(struct checker *c, const json_t *a, const char *path_id)
{
	json_t *out = json_object(), *v, *container, *nets, *pds;
	char *id;

	v = get(c, a, "id", T_STRING, "");
	/* a null id is a missing one: it must not name the root group "/" */
	if (path_id == NULL && v == NULL && (json_object_get(a, "id") == NULL ||
	    json_is_null(json_object_get(a, "id"))))
		add_err(c->errs, "/id", "error.path.missing");
	id = relay_app_id_absolute(path_id ? path_id : v ? json_string_value(v) : "");
	if (path_id != NULL || v != NULL)
		check_id(c, id);
	json_object_set_new(out, "id", json_string(id));
	free(id);
	command(c, a, out, json_is_object(json_object_get(a, "container")));
	simple_members(c, a, out);
	json_object_set_new(out, "constraints", constraints(c, a));
	json_object_set_new(out, "dependencies", dependencies(c, a));
	json_object_set_new(out, "fetch", fetch_list(c, a));
	nets = relay_container_networks(a, c->type_errs, c->errs);
	json_object_set_new(out, "networks", nets);
	pds = port_definitions(c, a, is_host_network(nets));
	container = relay_container_normalize(a, nets, json_array_size(pds), c->type_errs, c->errs);
	if (container != NULL)
		json_object_set_new(out, "container", container);
	json_object_set_new(out, "portDefinitions", is_host_network(nets) ? pds : json_array());
	if (!is_host_network(nets)) {
		json_decref(pds);
		json_object_set_new(out, "requirePorts", json_false());   /* host networking only */
	}
	json_object_set_new(out, "healthChecks", health_checks(c, a,
	    json_array_size(json_object_get(out, "portDefinitions")) +
	    json_array_size(json_object_get(container, "portMappings"))));
	json_object_set_new(out, "readinessChecks", readiness_checks(c, a, out));
	json_object_set_new(out, "upgradeStrategy", upgrade_strategy(c, a));
	json_object_set_new(out, "unreachableStrategy", unreachable_strategy(c, a));
	return out;
}

json_t *relay_app_normalize(struct relay *r, const json_t *body, const json_t *base,
    const char *path_id, int *status, json_t **err)
{
	struct checker c = { json_array(), json_array() };
	json_t *a = NULL, *out = NULL;

	*err = NULL;
	if (!json_is_object(body)) {
		*status = 400;
		*err = json_pack("{s:s, s:[{s:s, s:[s]}]}", "message", "Invalid JSON", "details",
		    "path", "/", "errors", "error.expected.jsobject");
		goto out;
	}
	a = base != NULL ? merge(body, base) : json_deep_copy(body);
	out = build(&c, a, path_id);
	if (json_array_size(c.type_errs) > 0) {
		*status = 400;
		*err = json_pack("{s:s, s:O}", "message", "Invalid JSON", "details", c.type_errs);
	} else if (json_array_size(c.errs) > 0) {
		*status = 422;
		*err = json_pack("{s:s, s:O}", "message", "Object is not valid", "details", c.errs);
	}
	if (*err != NULL) {
		json_decref(out);
		out = NULL;
	}
out:
	json_decref(a);
	json_decref(c.type_errs);
	json_decref(c.errs);
	return out;
}

bool relay_app_config_changed(const json_t *a, const json_t *b)
{
	json_t *x = json_deep_copy(a), *y = json_deep_copy(b);
	static const char *skip[] = { "instances", "version", "versionInfo", NULL };
	bool changed;
	int i;

	for (i = 0; skip[i] != NULL; i++) {
		json_object_del(x, skip[i]);
		json_object_del(y, skip[i]);
	}
	changed = !json_equal(x, y);
	json_decref(x);
	json_decref(y);
	return changed;
}
