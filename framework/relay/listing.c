/*
 * listing.c -- the long answers: GET /v2/apps and GET /v2/tasks.
 *
 * A listing of 1,000 apps and 10,000 tasks is megabytes of JSON, and
 * dashboards, load balancers and scripts ask for it again and again.
 * Built as a jansson tree, dumped and freed, it costs some 20 us per task.
 * Here every task keeps its JSON text until it changes (a status update or
 * a kill calls relay_task_json_stale; its state, goal and start time are
 * checked too), every app the text of its definition and of its service
 * ports until the definition is replaced, and a listing is those texts
 * copied one after the other, with what changes on every look (counts,
 * deployments) written in between.
 *
 * The texts are dumps of what relay_json_task() and the stored definition
 * hold, cut before their closing brace, so the shapes stay defined in one
 * place (api_json.c) and the bytes are those relay_api_reply() would send.
 */
#include "relay.h"

#include "json.h"
#include "xmalloc.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

/* a string literal, without its terminating NUL */
#define ADD_TEXT(out, lit) evbuffer_add((out), (lit), sizeof(lit) - 1)

/* dump j without its closing brace; *len is the length of what is kept */
static char *open_object_text(json_t *j, size_t *len)
{
	char *text = json_dumps(j, RELAY_JSON_FLAGS);

	json_decref(j);
	*len = strlen(text);
	if (*len > 0 && text[*len - 1] == '}')
		(*len)--;
	return text;
}

static void task_text(struct relay *r, struct relay_task *t)
{
	if (t->json != NULL && t->json_state == t->state && t->json_goal == t->goal &&
	    t->json_started_at == t->started_at)
		return;
	free(t->json);
	t->json = open_object_text(relay_json_task(r, t, false), &t->json_len);
	t->json_state = t->state;
	t->json_goal = t->goal;
	t->json_started_at = t->started_at;
}

static void app_text(struct relay_app *app)
{
	json_t *ports;

	if (app->def_json != NULL)
		return;
	app->def_json = open_object_text(json_incref(app->def), &app->def_json_len);
	ports = relay_container_service_ports(app->def);
	app->service_ports_json = json_dumps(ports, RELAY_JSON_FLAGS);
	json_decref(ports);
}

/* the app of the tasks listed last: consecutive tasks are mostly of one app */
struct last_app {
	const struct relay_group *group;
	struct relay_app *app;
};

static void add_service_ports(struct relay *r, struct evbuffer *out, const struct relay_task *t,
    struct last_app *last)
{
	if (last->group == NULL || last->group != t->group) {
		last->group = t->group;
		last->app = relay_app_find(r, t->app_id);
	}
	ADD_TEXT(out, ",\"servicePorts\":");
	if (last->app == NULL) {
		ADD_TEXT(out, "[]");
		return;
	}
	app_text(last->app);
	evbuffer_add(out, last->app->service_ports_json, strlen(last->app->service_ports_json));
}

static void add_task(struct relay *r, struct evbuffer *out, struct relay_task *t,
    bool service_ports, struct last_app *last)
{
	task_text(r, t);
	evbuffer_add(out, t->json, t->json_len);
	if (service_ports)
		add_service_ports(r, out, t, last);
	ADD_TEXT(out, "}");
}

void relay_listing_add_task(struct relay *r, struct evbuffer *out, struct relay_task *t,
    bool service_ports)
{
	struct last_app last = { NULL, NULL };

	add_task(r, out, t, service_ports, &last);
}

void relay_listing_tasks(struct relay *r, struct evbuffer *out,
    bool (*selected)(const struct relay_task *t, const void *arg), const void *arg)
{
	struct last_app last = { NULL, NULL };
	struct relay_task *t;
	bool first = true;

	ADD_TEXT(out, "{\"tasks\":[");
	TAILQ_FOREACH(t, &r->tasks, entry) {
		if (selected != NULL && !selected(t, arg))
			continue;
		if (!first)
			ADD_TEXT(out, ",");
		first = false;
		add_task(r, out, t, true, &last);
	}
	ADD_TEXT(out, "]}");
}

void relay_listing_add_app(struct relay *r, struct evbuffer *out, struct relay_app *app,
    unsigned embed)
{
	struct last_app last = { NULL, NULL };
	struct relay_deployment *d;
	struct relay_task *t;
	int staged, running, healthy, unhealthy;
	bool first = true;
	json_t *whole;
	char *text;

	if (embed & (RELAY_EMBED_STATS | RELAY_EMBED_READINESS)) {
		/* seldom asked for: the whole app as api_json.c builds it */
		whole = relay_json_app(r, app, embed);
		text = json_dumps(whole, RELAY_JSON_FLAGS);
		json_decref(whole);
		evbuffer_add(out, text, strlen(text));
		free(text);
		return;
	}
	app_text(app);
	evbuffer_add(out, app->def_json, app->def_json_len);
	if (embed & RELAY_EMBED_COUNTS) {
		relay_app_counts(r, app, &staged, &running, &healthy, &unhealthy);
		evbuffer_add_printf(out, ",\"tasksStaged\":%d,\"tasksRunning\":%d,"
		    "\"tasksHealthy\":%d,\"tasksUnhealthy\":%d", staged, running, healthy, unhealthy);
	}
	if (embed & (RELAY_EMBED_DEPLOYMENTS | RELAY_EMBED_TASKS)) {
		ADD_TEXT(out, ",\"deployments\":[");
		TAILQ_FOREACH(d, &r->deployments, entry) {
			if (!relay_deployment_affects(d, app->id))
				continue;
			evbuffer_add_printf(out, "%s{\"id\":\"%s\"}", first ? "" : ",", d->id);
			first = false;
		}
		ADD_TEXT(out, "]");
	}
	if (embed & RELAY_EMBED_TASKS) {
		ADD_TEXT(out, ",\"tasks\":[");
		first = true;
		RELAY_APP_TASKS_FOREACH(t, r, app->id) {
			if (!first)
				ADD_TEXT(out, ",");
			first = false;
			add_task(r, out, t, true, &last);
		}
		ADD_TEXT(out, "]");
	}
	if ((embed & RELAY_EMBED_FAILURE) && app->last_failure != NULL) {
		text = json_dumps(app->last_failure, RELAY_JSON_FLAGS);
		evbuffer_add_printf(out, ",\"lastTaskFailure\":%s", text);
		free(text);
	}
	ADD_TEXT(out, "}");
}
