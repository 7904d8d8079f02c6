/*
 * history.c -- group versions: what a group looked like at each change,
 * for GET /v2/groups/{id}/versions[/{version}] and the rollback of a group
 * (PUT /v2/groups/{id} {"version": ...}).
 *
 * Nothing is copied per change. Every change is one deployment with one
 * version V, and every app it creates or changes is stamped V and stored
 * under that version ("versions" in relay.db, state.c); so the stored app
 * versions already say which app changed when. Only what they cannot say
 * is written here, one small record per app or group:
 *
 *   "apphistory"   "<app id>\t<V>"   {"version": <the app's version>}
 *                  when the change left the app at an older version (a
 *                  deployment rolled back), {"version": null} when it
 *                  removed the app;
 *   "grouphistory" "<group id>\t<V>" the group's record (dependencies),
 *                  or {"removed": true}.
 *
 * A group's versions are the versions of these records for the apps and
 * groups under it; the group at version V holds, for every app id under
 * it, the app as its newest record at or before V says (none when that
 * record is a removal), and the group records likewise. App versions are
 * therefore kept when an app is deleted. Reading walks the records, so it
 * costs time in proportion to the history; changes cost nothing extra.
 */
#include "relay.h"

#include "json.h"
#include "log.h"
#include "util.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>

#define NS_APPS "apphistory"
#define NS_GROUPS "grouphistory"

/* id is inside group (or is it) */
static bool under(const char *id, const char *group)
{
	size_t n = strlen(group);

	if (strcmp(group, "/") == 0)
		return true;
	return strncmp(id, group, n) == 0 && (id[n] == '\0' || id[n] == '/');
}

static void put(struct relay *r, const char *ns, const char *id, const char *at, json_t *j)
{
	char *key = xasprintf("%s\t%s", id, at), *text = bt_json_dump_exact(j), *cause = NULL;

	if (r->store != NULL && bt_store_put(r->store, ns, key, text, strlen(text), &cause) != 0) {
		log_error("unable to store %s '%s': %s", ns, key, cause);
		free(cause);
	}
	free(text);
	free(key);
	json_decref(j);
}

void relay_history_app(struct relay *r, const char *at, const char *app_id, const char *version)
{
	put(r, NS_APPS, app_id, at, json_pack("{s:s?}", "version", version));
}

void relay_history_group(struct relay *r, const char *at, const char *gid, const json_t *record)
{
	put(r, NS_GROUPS, gid, at, record != NULL ? json_incref((json_t *)record) :
	    json_pack("{s:b}", "removed", 1));
}

/*
 * One walk over the records under a group. `latest` maps each id to
 * [version, value] of its newest record at or before `until` (NULL: no
 * bound); `versions` collects every version seen (a set).
 */
struct walk {
	const char *gid;
	const char *until;
	bool groups;                    /* group records: the group itself counts too */
	bool values;                    /* the value is the app's version (versions namespace) */
	json_t *latest;
	json_t *versions;
};

static void consider(struct walk *w, const char *id, const char *at, json_t *value)
{
	json_t *cur = json_object_get(w->latest, id);

	json_object_set_new(w->versions, at, json_true());
	if (w->until != NULL && strcmp(at, w->until) > 0) {
		json_decref(value);
		return;
	}
	if (cur == NULL || strcmp(json_string_value(json_array_get(cur, 0)), at) <= 0)
		json_object_set_new(w->latest, id, json_pack("[s, o]", at, value));
	else
		json_decref(value);
}

static int walk_cb(const char *key, const char *value, size_t len, void *arg)
{
	struct walk *w = arg;
	const char *tab = strchr(key, '\t');
	char *id;
	json_t *v;

	if (tab == NULL)
		return 0;
	id = xstrndup(key, (size_t)(tab - key));
	if (under(id, w->gid) && (w->groups || strcmp(id, w->gid) != 0)) {
		if (w->values)
			v = json_pack("{s:s}", "version", tab + 1);
		else
			v = bt_json_parse(value, len, NULL);
		if (v != NULL)
			consider(w, id, tab + 1, v);
	}
	free(id);
	return 0;
}

/* the newest records of the apps and groups under gid up to `until` */
static void walk(struct relay *r, struct walk *apps, struct walk *groups)
{
	json_t *recs = relay_state_groups_load(r), *rec;
	const char *k;

	apps->values = true;
	bt_store_foreach(r->store, "versions", walk_cb, apps);
	apps->values = false;
	bt_store_foreach(r->store, NS_APPS, walk_cb, apps);
	/* records from before there was a group history count at their version */
	json_object_foreach(recs, k, rec)
		if (under(k, groups->gid) && bt_json_string(rec, "version") != NULL)
			consider(groups, k, bt_json_string(rec, "version"), json_incref(rec));
	bt_store_foreach(r->store, NS_GROUPS, walk_cb, groups);
	json_decref(recs);
}

static int desc(const void *a, const void *b)
{
	return -strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *relay_history_versions(struct relay *r, const char *gid)
{
	struct walk apps = { gid, NULL, false, false, json_object(), json_object() };
	struct walk groups = { gid, NULL, true, false, json_object(), apps.versions };
	json_t *out = json_array(), *v;
	const char **list, *k;
	size_t n = 0, i;

	walk(r, &apps, &groups);
	list = xcalloc(json_object_size(apps.versions) + 1, sizeof *list);
	json_object_foreach(apps.versions, k, v)
		list[n++] = k;
	qsort(list, n, sizeof *list, desc);
	for (i = 0; i < n; i++)
		json_array_append_new(out, json_string(list[i]));
	free(list);
	json_decref(apps.latest);
	json_decref(groups.latest);
	json_decref(apps.versions);
	return out;
}

/* the stored definition of app id at version v, or NULL */
static json_t *app_at(struct relay *r, const char *id, const char *v)
{
	char *key = xasprintf("%s\t%s", id, v), *text = NULL;
	size_t len;
	json_t *def = NULL;

	if (bt_store_get(r->store, "versions", key, &text, &len) == 0)
		def = bt_json_parse(text, len, NULL);
	free(text);
	free(key);
	return def;
}

json_t *relay_history_group_at(struct relay *r, const char *gid, const char *version)
{
	struct walk apps = { gid, version, false, false, json_object(), json_object() };
	struct walk groups = { gid, version, true, false, json_object(), apps.versions };
	json_t *out = NULL, *defs, *recs, *last, *val, *def;
	const char *k, *v;

	walk(r, &apps, &groups);
	if (json_object_get(apps.versions, version) == NULL)
		goto out;
	defs = json_object();
	recs = json_object();
	json_object_foreach(apps.latest, k, last) {
		val = json_array_get(last, 1);
		if ((v = bt_json_string(val, "version")) == NULL)
			continue;
		if ((def = app_at(r, k, v)) != NULL)
			json_object_set_new(defs, k, def);
		else
			log_warn("group '%s' at %s: app '%s' version %s is gone", gid, version, k, v);
	}
	json_object_foreach(groups.latest, k, last) {
		val = json_array_get(last, 1);
		if (!json_is_true(json_object_get(val, "removed")))
			json_object_set(recs, k, val);
	}
	out = json_pack("{s:o, s:o}", "apps", defs, "records", recs);
out:
	json_decref(apps.latest);
	json_decref(groups.latest);
	json_decref(apps.versions);
	return out;
}
