/*
 * fuzz_app.c -- fuzz relay's app definitions: the path of POST and PUT /v2/apps.
 *
 * The input is parsed as JSON (bt_json_parse, as the REST API does) and
 * run through the functions the API uses: relay_app_normalize as a
 * create, service port assignment next to an app that already holds
 * ports, and relay_app_normalize again as a partial update merged over
 * that app. Whatever normalisation accepts must come out canonical:
 * normalising the result again gives the same definition. Everything is
 * freed, so leaks show under ASan. The relay sources that hold these
 * functions are included directly, like the unit test does.
 */
#include "../../framework/relay/apps.c"
#include "../../framework/relay/appset.c"
#include "../../framework/relay/container.c"
#include "../../framework/relay/taskinfo.c"

/* health.c is not linked in: TaskInfos built here carry no health check */
json_t *relay_health_task_check(const struct relay_app *app, const uint64_t *ports, size_t n)
{
	return NULL;
}

#include <stdio.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_text[] =
    "{\"id\":\"/base\",\"cmd\":\"sleep 1\",\"portDefinitions\":[{\"port\":0},{\"port\":0}]}";

static struct relay *new_relay(void)
{
	struct relay *r = xcalloc(1, sizeof *r);

	TAILQ_INIT(&r->apps);
	TAILQ_INIT(&r->tasks);
	TAILQ_INIT(&r->deployments);
	r->cfg.local_port_min = 10000;
	r->cfg.local_port_max = 10004;
	return r;
}

static void free_relay(struct relay *r)
{
	struct relay_app *app;

	while ((app = TAILQ_FIRST(&r->apps)) != NULL)
		relay_app_remove(r, app);
	bt_map_release(&r->app_index);
	free(r);
}

static void stamp(json_t *def)
{
	json_object_set_new(def, "version", json_string("2024-01-01T00:00:00.000Z"));
	json_object_set_new(def, "versionInfo", json_pack("{s:s, s:s}", "lastScalingAt",
	    "2024-01-01T00:00:00.000Z", "lastConfigChangeAt", "2024-01-01T00:00:00.000Z"));
}

/* ports, version, and into the app set, as a create or update does */
static void store(struct relay *r, json_t *def, const json_t *old)
{
	char *cause = NULL, *text, *safe;

	if (relay_app_assign_ports(r, def, old, &cause) != 0) {
		free(cause);
		json_decref(def);
		return;
	}
	stamp(def);
	text = json_dumps(def, JSON_COMPACT | JSON_REAL_PRECISION(15));
	free(text);
	safe = relay_app_safe_id(bt_json_string(def, "id"));
	free(safe);
	relay_app_set(r, def);
}

/* a normalised definition must normalise to itself */
static void check_canonical(struct relay *r, const json_t *def)
{
	json_t *again, *err = NULL;
	int status = 0;

	again = relay_app_normalize(r, def, NULL, NULL, &status, &err);
	if (again == NULL || !json_equal(again, def)) {
		char *a = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
		char *b = again ? json_dumps(again, JSON_COMPACT | JSON_SORT_KEYS) :
		    json_dumps(err, JSON_COMPACT);
		fprintf(stderr, "normalised app is not canonical:\n%s\n%s\n", a, b);
		abort();
	}
	json_decref(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay *r;
	json_t *body, *base_body, *base, *def, *err = NULL;
	char *cause = NULL;
	int status = 0;
	struct relay_app *app;

	body = bt_json_parse((const char *)data, size, &cause);
	if (body == NULL) {
		free(cause);
		return 0;
	}
	r = new_relay();
	base_body = json_loads(base_text, 0, NULL);
	base = relay_app_normalize(r, base_body, NULL, NULL, &status, &err);
	json_decref(base_body);
	store(r, base, NULL);

	/* POST /v2/apps */
	def = relay_app_normalize(r, body, NULL, NULL, &status, &err);
	if (def != NULL) {
		check_canonical(r, def);
		if (relay_app_find(r, bt_json_string(def, "id")) == NULL)
			store(r, def, NULL);
		else
			json_decref(def);
	}
	json_decref(err);
	err = NULL;

	/* PUT /v2/apps/base, a partial update */
	app = relay_app_find(r, "/base");
	def = relay_app_normalize(r, body, app->def, "/base", &status, &err);
	if (def != NULL) {
		json_t *old = json_incref(app->def);
		(void)relay_app_config_changed(old, def);
		store(r, def, old);
		json_decref(old);
	}
	json_decref(err);

	free_relay(r);
	json_decref(body);
	return 0;
}
