/*
 * docker.c -- the Docker Engine API client of butte-agent.
 *
 * The agent talks to dockerd itself, over its Unix socket (--docker_socket)
 * with common/http_client.h, so no request ever blocks the loop. At start,
 * when "docker" is in --containerizers, it checks the engine: GET /_ping,
 * then GET /version, and speaks the engine's API version capped at the
 * newest one butte implements (every later path is prefixed /v1.NN). When
 * the engine does not answer, or a request finds it gone, the engine is
 * "down": the reason is logged, Docker launches fail at once (see
 * docker_tasks.c) and the check is retried on a timer, backing off from 1 s
 * to 10 s, until the engine is back.
 *
 * Each time the engine becomes ready the agent sweeps it: containers that
 * carry this agent's work dir label but belong to no live task of this
 * agent are stopped and removed. Several agents may share one engine; the
 * label keeps each to its own containers.
 *
 * Every request is a docker_req kept on the engine's list, so cancelling a
 * request or releasing the engine frees everything it owns.
 */
#include "docker.h"
#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_TIMEOUT   10.0
#define RETRY_MIN       1.0
#define RETRY_MAX       10.0
#define REMOVE_TIMEOUT  60.0

struct docker_req {
	TAILQ_ENTRY(docker_req) entry;
	struct agent_docker *d;
	struct bt_http_call *call;
	docker_data_cb on_data;
	docker_done_cb on_done;
	void *arg;
	void (*free_arg)(void *);
};

static void check_start(struct agent_docker *d);

/* ---- requests ---- */

static void req_free(struct docker_req *r)
{
	TAILQ_REMOVE(&r->d->reqs, r, entry);
	if (r->free_arg != NULL)
		r->free_arg(r->arg);
	free(r);
}

static int req_data_cb(struct bt_http_call *call, const void *data, size_t len, void *arg)
{
	struct docker_req *r = arg;

	return r->on_data(data, len, r->arg);
}

/* a request that found no engine: the engine is down until a check says otherwise */
static void engine_lost(struct agent_docker *d, const char *error)
{
	struct timeval tv = bt_timeval(0.2);

	if (d->state != DOCKER_ENGINE_READY || strstr(error, "imed out") != NULL)
		return;
	log_warn("lost the Docker engine at '%s': %s", d->agent->docker_socket, error);
	d->state = DOCKER_ENGINE_DOWN;
	free(d->error);
	d->error = xasprintf("the Docker engine at '%s' is unreachable: %s",
	    d->agent->docker_socket, error);
	d->retry_interval = RETRY_MIN;
	evtimer_add(d->retry_ev, &tv);
}

static void req_done_cb(struct bt_http_call *call, int status, const char *body, size_t len,
    const char *error, void *arg)
{
	struct docker_req *r = arg;
	json_t *j = NULL;

	if (status == 0 && error != NULL)
		engine_lost(r->d, error);
	if (body != NULL && len > 0)
		j = json_loadb(body, len, 0, NULL);
	r->call = NULL;
	if (r->on_done != NULL)
		r->on_done(status, j, body, error, r->arg);
	json_decref(j);
	req_free(r);
}

struct docker_req *docker_request(struct agent_docker *d, const char *method, const char *path,
    const json_t *body, double timeout, docker_data_cb on_data, docker_done_cb on_done,
    void *arg)
{
	static const char *const json_headers[] = { "Content-Type: application/json", NULL };
	struct bt_http_request_opts o = { 0 };
	struct docker_req *r = xcalloc(1, sizeof *r);
	char *url, *text = NULL;

	r->d = d;
	r->on_data = on_data;
	r->on_done = on_done;
	r->arg = arg;
	TAILQ_INSERT_TAIL(&d->reqs, r, entry);
	/* the host part is ignored over a Unix socket; /_ping needs no version */
	url = xasprintf("http://docker%s%s", strcmp(path, "/_ping") == 0 ||
	    strcmp(path, "/version") == 0 ? "" : d->prefix, path);
	o.method = method;
	o.url = url;
	o.unix_socket = d->agent->docker_socket;
	o.timeout = timeout;
	o.connect_timeout = 5;
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		o.headers = json_headers;
		o.body = text;
		o.body_len = strlen(text);
	} else if (strcmp(method, "POST") == 0) {
		o.body = "";
		o.body_len = 0;
	}
	o.on_data = on_data != NULL ? req_data_cb : NULL;
	o.on_done = req_done_cb;
	o.arg = r;
	log_debug("docker: %s %s", method, url);
	r->call = bt_http_request(d->client, &o);
	free(text);
	free(url);
	return r;
}

void docker_req_own_arg(struct docker_req *r, void (*free_arg)(void *))
{
	r->free_arg = free_arg;
}

void docker_cancel(struct docker_req *r)
{
	if (r == NULL)
		return;
	if (r->call != NULL)
		bt_http_call_cancel(r->call);
	req_free(r);
}

char *docker_error_message(struct agent_docker *d, int status, json_t *body, const char *raw,
    const char *error)
{
	const char *msg = body != NULL ? bt_json_string(body, "message") : NULL;

	struct stat st;

	if (status == 0 && stat(d->agent->docker_socket, &st) != 0)
		return xasprintf("the Docker engine at '%s' is unreachable: %s",
		    d->agent->docker_socket, strerror(errno));
	if (status == 0)
		return xasprintf("the Docker engine at '%s' is unreachable: %s",
		    d->agent->docker_socket, error != NULL ? error : "no answer");
	if (msg != NULL)
		return xstrdup(msg);
	if (raw != NULL && *raw != '\0')
		return xstrndup(raw, strcspn(raw, "\n"));
	return xasprintf("the Docker engine answered %d", status);
}

char *docker_escape(const char *s, const char *keep)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *o = out;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || strchr("-._~", c) != NULL || strchr(keep, c) != NULL) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

void docker_image_split(const char *image, char **repo, char **tag)
{
	const char *at = strchr(image, '@');
	const char *slash = strrchr(image, '/');
	const char *colon = strrchr(image, ':');

	if (at != NULL) {
		*repo = xstrndup(image, (size_t)(at - image));
		*tag = xstrdup(at + 1);
	} else if (colon != NULL && (slash == NULL || colon > slash)) {
		*repo = xstrndup(image, (size_t)(colon - image));
		*tag = xstrdup(colon + 1);
	} else {
		*repo = xstrdup(image);
		*tag = xstrdup("latest");
	}
}

/* ---- removal ---- */

static void removed_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	const char *name = arg;

	if (status == 204 || status == 404)
		log_info("removed container '%s'", name);
	else
		log_warn("unable to remove container '%s': %d %s", name, status,
		    raw != NULL ? raw : error != NULL ? error : "");
}

static void delete_container(struct agent_docker *d, const char *name)
{
	char *path = xasprintf("/containers/%s?force=1&v=1", name);
	struct docker_req *r = docker_request(d, "DELETE", path, NULL, REMOVE_TIMEOUT, NULL,
	    removed_cb, xstrdup(name));

	docker_req_own_arg(r, free);
	free(path);
}

static void stopped_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	char **ctx = arg;       /* { name, (char *)engine } */

	if (status != 0)
		delete_container((struct agent_docker *)ctx[1], ctx[0]);
}

static void stop_ctx_free(void *arg)
{
	char **ctx = arg;

	free(ctx[0]);
	free(ctx);
}

void docker_remove_container(struct agent_docker *d, const char *name, double grace)
{
	struct docker_req *r;
	char **ctx, *path;

	if (grace < 0) {
		delete_container(d, name);
		return;
	}
	ctx = xcalloc(2, sizeof *ctx);
	ctx[0] = xstrdup(name);
	ctx[1] = (char *)d;
	path = xasprintf("/containers/%s/stop?t=%d", name, (int)(grace + 0.999));
	r = docker_request(d, "POST", path, NULL, grace + REMOVE_TIMEOUT, NULL, stopped_cb, ctx);
	docker_req_own_arg(r, stop_ctx_free);
	free(path);
}

/* ---- the sweep of containers no task of this agent owns ---- */

static bool owned_by_live_task(struct agent *a, const char *cid)
{
	struct agent_task *t;

	TAILQ_FOREACH(t, &a->tasks, entry) {
		if (strcmp(t->container_id, cid) == 0)
			return !t->ended && !bt_task_state_terminal(t->state);
	}
	return false;
}

static void sweep_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker *d = arg;
	struct agent *a = d->agent;
	json_t *c;
	size_t i;

	if (status != 200 || !json_is_array(body)) {
		log_warn("unable to list the containers of this agent: %d %s", status,
		    raw != NULL ? raw : error != NULL ? error : "");
		return;
	}
	json_array_foreach(body, i, c) {
		json_t *labels = json_object_get(c, "Labels");
		const char *cid = bt_json_string(labels, DOCKER_LABEL_CONTAINER);
		const char *wd = bt_json_string(labels, DOCKER_LABEL_WORK_DIR);
		const char *id = bt_json_string(c, "Id");
		if (id == NULL || wd == NULL || strcmp(wd, a->work_dir) != 0)
			continue;
		if (cid != NULL && owned_by_live_task(a, cid))
			continue;
		log_info("removing container '%s' (%s): no task of this agent owns it",
		    cid != NULL ? cid : "?", id);
		docker_remove_container(d, id, a->kill_grace);
	}
}

static void sweep(struct agent_docker *d)
{
	json_t *filters = json_pack("{s:[s+]}", "label", DOCKER_LABEL_WORK_DIR "=",
	    d->agent->work_dir);
	char *text = json_dumps(filters, JSON_COMPACT);
	char *esc = docker_escape(text, "");
	char *path = xasprintf("/containers/json?all=1&filters=%s", esc);

	docker_request(d, "GET", path, NULL, 60, NULL, sweep_cb, d);
	free(path);
	free(esc);
	free(text);
	json_decref(filters);
}

/* ---- the engine check ---- */

static void engine_down(struct agent_docker *d, char *why)
{
	struct timeval tv = bt_timeval(d->retry_interval);
	bool news = d->error == NULL || strcmp(d->error, why) != 0 ||
	    d->state != DOCKER_ENGINE_DOWN;

	if (news)
		log_warn("%s; Docker tasks fail until it answers (retrying in the background)", why);
	else
		log_debug("%s", why);
	free(d->error);
	d->error = why;
	d->state = DOCKER_ENGINE_DOWN;
	evtimer_add(d->retry_ev, &tv);
	d->retry_interval *= 2;
	if (d->retry_interval > RETRY_MAX)
		d->retry_interval = RETRY_MAX;
	docker_engine_changed(d->agent);
}

/* "1.41" -> 41; -1 unless it is 1.N */
static int api_minor(const char *v)
{
	char *end;
	long minor;

	if (v == NULL || strncmp(v, "1.", 2) != 0)
		return -1;
	minor = strtol(v + 2, &end, 10);
	return *end == '\0' && minor >= 0 && minor < 1000 ? (int)minor : -1;
}

static void version_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker *d = arg;
	const char *sock = d->agent->docker_socket;
	const char *api = bt_json_string(body, "ApiVersion");
	int minor = api_minor(api);

	d->check = NULL;
	if (status != 200 || minor < 0) {
		char *msg = docker_error_message(d, status, body, raw, error);
		engine_down(d, status == 0 ? msg : xasprintf("the Docker engine at '%s' "
		    "answered GET /version with %d: %s", sock, status, msg));
		if (status != 0)
			free(msg);
		return;
	}
	if (minor < DOCKER_API_MIN_MINOR) {
		engine_down(d, xasprintf("the Docker engine at '%s' speaks API %s, older than "
		    "1.%d, the oldest butte-agent supports", sock, api, DOCKER_API_MIN_MINOR));
		return;
	}
	if (minor > DOCKER_API_MAX_MINOR)
		minor = DOCKER_API_MAX_MINOR;
	snprintf(d->prefix, sizeof d->prefix, "/v1.%d", minor);
	free(d->version);
	d->version = xstrdup(bt_json_string(body, "Version") != NULL ?
	    bt_json_string(body, "Version") : "?");
	log_info("Docker engine %s at '%s' (API %s, %s/%s); using API 1.%d", d->version, sock,
	    api, bt_json_string(body, "Os") != NULL ? bt_json_string(body, "Os") : "?",
	    bt_json_string(body, "Arch") != NULL ? bt_json_string(body, "Arch") : "?", minor);
	free(d->error);
	d->error = NULL;
	d->state = DOCKER_ENGINE_READY;
	d->retry_interval = RETRY_MIN;
	sweep(d);
	docker_engine_changed(d->agent);
}

static void ping_cb(int status, json_t *body, const char *raw, const char *error, void *arg)
{
	struct agent_docker *d = arg;

	d->check = NULL;
	if (status != 200) {
		char *msg = docker_error_message(d, status, body, raw, error);
		engine_down(d, status == 0 ? msg : xasprintf("the Docker engine at '%s' "
		    "answered GET /_ping with %d: %s", d->agent->docker_socket, status, msg));
		if (status != 0)
			free(msg);
		return;
	}
	d->check = docker_request(d, "GET", "/version", NULL, CHECK_TIMEOUT, NULL, version_cb, d);
}

static void check_start(struct agent_docker *d)
{
	if (d->check != NULL)
		return;
	d->check = docker_request(d, "GET", "/_ping", NULL, CHECK_TIMEOUT, NULL, ping_cb, d);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
	check_start(arg);
}

/* ---- the containerizer's hooks ---- */

static bool docker_listed(const char *list)
{
	char *copy = xstrdup(list), *save = NULL, *tok;
	bool found = false;

	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
		found = found || strcmp(tok, "docker") == 0;
	free(copy);
	return found;
}

void agent_docker_init(struct agent *a)
{
	struct agent_docker *d = xcalloc(1, sizeof *d);

	d->agent = a;
	TAILQ_INIT(&d->reqs);
	d->enabled = a->containerizers != NULL && docker_listed(a->containerizers);
	d->state = d->enabled ? DOCKER_ENGINE_CHECKING : DOCKER_ENGINE_DOWN;
	d->retry_interval = RETRY_MIN;
	snprintf(d->prefix, sizeof d->prefix, "/v1.%d", DOCKER_API_MIN_MINOR);
	a->docker = d;
	if (a->base == NULL || !d->enabled)
		return;
	d->client = bt_http_client_new(a->base);
	d->retry_ev = evtimer_new(a->base, retry_cb, d);
	log_info("checking the Docker engine at '%s'", a->docker_socket);
	check_start(d);
}

void agent_docker_release(struct agent *a)
{
	struct agent_docker *d = a->docker;
	struct docker_req *r;

	if (d == NULL)
		return;
	if (d->client != NULL)
		bt_http_client_free(d->client);
	while ((r = TAILQ_FIRST(&d->reqs)) != NULL) {
		r->call = NULL;
		req_free(r);
	}
	if (d->retry_ev != NULL)
		event_free(d->retry_ev);
	free(d->error);
	free(d->version);
	free(d);
	a->docker = NULL;
}
