/*
 * listing.c -- the long answers: GET /v2/apps and GET /v2/tasks.
 *
 * A listing of 1,000 apps and 10,000 tasks is megabytes of JSON, and
 * dashboards, load balancers and scripts ask for it again and again.
 * Built as a jansson tree, dumped and freed, it costs some 20 us per task.
 * Here every task keeps its JSON text until it changes (a status update or
 * a kill calls relay_task_json_stale; its state, goal and start time are
 * checked too), every app the text of its definition and of its service
 * ports until the definition is replaced, and every app's group of tasks
 * the texts of its tasks joined, until one of them changes. A listing is
 * those texts one after the other (GET /v2/tasks: each app's group text,
 * not copied but referred to until the answer is sent), with what changes
 * on every look (counts, deployments) written in between.
 *
 * The texts are dumps of what relay_json_task() and the stored definition
 * hold, cut before their closing brace, so the shapes stay defined in one
 * place (api_json.c) and the bytes are those relay_api_reply() would send.
 */
#include "relay.h"

#include "json.h"
#include "xmalloc.h"

#include <event2/buffer.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/*
 * A group's text is shared with the answers that list it: a listing
 * refers to it (evbuffer_add_reference) instead of copying megabytes, and
 * the text lives until its group and every answer holding it let go.
 */
struct shared_text {
	unsigned refs;
	char text[];
};

static struct shared_text *shared_of(const char *text)
{
	return (struct shared_text *)(void *)(text - offsetof(struct shared_text, text));
}

void relay_text_unref(char *text)
{
	struct shared_text *st;

	if (text == NULL)
		return;
	st = shared_of(text);
	if (--st->refs == 0)
		free(st);
}

static void text_cleanup_cb(const void *data, size_t len, void *arg)
{
	relay_text_unref(arg);
}

/* g's text into out, by reference */
static void add_group_text(struct evbuffer *out, struct relay_group *g)
{
	if (g->json_len == 0)
		return;
	shared_of(g->json)->refs++;
	if (evbuffer_add_reference(out, g->json, g->json_len, text_cleanup_cb, g->json) != 0)
		relay_text_unref(g->json);
}

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

/*
 * The listing of g's tasks, each with its service ports, separated by
 * commas: made again when a task of g changes, joins or leaves, or the
 * app's definition (and so its service ports) is replaced.
 */
static void group_text(struct relay *r, struct relay_group *g, struct relay_app *app)
{
	struct last_app last = { g, app };
	unsigned long gen = app != NULL ? app->json_gen : 0;
	struct shared_text *st;
	struct relay_task *t;
	struct evbuffer *b;

	if (g->json != NULL && g->json_gen == gen)
		return;
	relay_group_json_stale(g);
	b = evbuffer_new();
	TAILQ_FOREACH(t, &g->tasks, gentry) {
		if (t != TAILQ_FIRST(&g->tasks))
			ADD_TEXT(b, ",");
		add_task(r, b, t, true, &last);
	}
	g->json_len = evbuffer_get_length(b);
	st = xmalloc(sizeof *st + g->json_len + 1);
	st->refs = 1;
	evbuffer_remove(b, st->text, g->json_len);
	st->text[g->json_len] = '\0';
	g->json = st->text;
	evbuffer_free(b);
	g->json_gen = gen;
}

static void add_group(struct relay *r, struct evbuffer *out, struct relay_group *g,
    struct relay_app *app, bool (*selected)(const struct relay_task *t, const void *arg),
    const void *arg, bool *first)
{
	struct last_app last = { g, app };
	struct relay_task *t;

	if (selected == NULL) {
		group_text(r, g, app);
		if (g->json_len > 0 && !*first)
			ADD_TEXT(out, ",");
		*first = *first && g->json_len == 0;
		add_group_text(out, g);
		return;
	}
	TAILQ_FOREACH(t, &g->tasks, gentry) {
		if (!selected(t, arg))
			continue;
		if (!*first)
			ADD_TEXT(out, ",");
		*first = false;
		add_task(r, out, t, true, &last);
	}
}

/* the tasks app by app, in the order of the apps, then those of apps gone */
void relay_listing_tasks(struct relay *r, struct evbuffer *out,
    bool (*selected)(const struct relay_task *t, const void *arg), const void *arg)
{
	struct relay_group *g, **gs;
	struct relay_app *app;
	size_t i, n, listed = 0;
	bool first = true;

	ADD_TEXT(out, "{\"tasks\":[");
	TAILQ_FOREACH(app, &r->apps, entry)
		if ((g = relay_group_find(r, app->id)) != NULL) {
			add_group(r, out, g, app, selected, arg, &first);
			listed++;
		}
	if (listed < r->groups.n) {
		gs = (struct relay_group **)bt_map_values(&r->groups, &n);
		for (i = 0; i < n; i++)
			if (relay_app_find(r, gs[i]->app_id) == NULL)
				add_group(r, out, gs[i], NULL, selected, arg, &first);
		free(gs);
	}
	ADD_TEXT(out, "]}");
}

void relay_listing_add_app(struct relay *r, struct evbuffer *out, struct relay_app *app,
    unsigned embed)
{
	struct relay_deployment *d;
	struct relay_group *g;
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
		if ((g = relay_group_find(r, app->id)) != NULL) {
			group_text(r, g, app);
			add_group_text(out, g);
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
