/*
 * offers.c -- offers: creation from the allocator, ACCEPT, DECLINE, rescind.
 *
 * The allocator calls master_offer_cb once per offer during a run; the
 * offer gets an id "<masterId>-O<n>" and waits in its framework's pending
 * array, and master_offers_flush sends each framework one OFFERS event
 * after the run. An offer id is good for one ACCEPT or DECLINE only.
 * ACCEPT checks that every offer exists, belongs to the caller and sits on
 * one agent (otherwise its tasks get TASK_LOST, or TASK_DROPPED for
 * PARTITION_AWARE frameworks, with REASON_INVALID_OFFERS); each LAUNCH
 * task is validated against what is left of the offered resources
 * (invalid ones get TASK_ERROR); the valid tasks go to the agent in one
 * LAUNCH event, and what no task used goes back to the allocator with a
 * refuse filter (Filters.refuse_seconds, default 5 s).
 */
#include "master.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "json.h"
#include "log.h"
#include "pbjson.h"
#include "util.h"
#include "xmalloc.h"

#define DEFAULT_REFUSE_SECONDS 5.0

static void offer_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master_offer *o = arg;

	log_info("offer '%s' timed out; rescinding it", o->id);
	master_offer_remove(o, true, 0);
}

void master_offer_cb(void *agent, void *framework, const struct bt_resources *res, void *arg)
{
	struct master *m = arg;
	struct master_agent *a = agent;
	struct master_framework *fw = framework;
	struct master_offer *o = xcalloc(1, sizeof *o);

	o->id = xasprintf("%s-O%llu", m->id, (unsigned long long)m->next_offer++);
	o->fw = fw;
	o->agent = a;
	bt_resources_copy(&o->resources, res);
	o->created = bt_now();
	bt_map_put(&m->offers, o->id, o);
	TAILQ_INSERT_TAIL(&fw->offers, o, fw_entry);
	TAILQ_INSERT_TAIL(&a->offers, o, agent_entry);
	if (m->flags.offer_timeout > 0) {
		struct timeval tv = bt_timeval(m->flags.offer_timeout);
		o->timeout_ev = event_new(m->base, -1, 0, offer_timeout_cb, o);
		event_add(o->timeout_ev, &tv);
	}
	if (fw->npending == fw->cappending) {
		fw->cappending = fw->cappending ? fw->cappending * 2 : 8;
		fw->pending = xreallocarray(fw->pending, fw->cappending, sizeof *fw->pending);
	}
	fw->pending[fw->npending++] = o;
}

/* the pieces of one Offer message, kept together while the event is encoded */
struct offer_pb {
	Mesos__V1__Offer offer;
	Mesos__V1__OfferID id;
	Mesos__V1__FrameworkID fid;
	Mesos__V1__AgentID aid;
	Mesos__V1__URL url;
	Mesos__V1__Address addr;
	Mesos__V1__Resource__AllocationInfo ai;
};

static void offer_pb_fill(struct offer_pb *p, const struct master_offer *o)
{
	const struct master_agent *a = o->agent;

	mesos__v1__offer__init(&p->offer);
	mesos__v1__offer_id__init(&p->id);
	mesos__v1__framework_id__init(&p->fid);
	mesos__v1__agent_id__init(&p->aid);
	mesos__v1__url__init(&p->url);
	mesos__v1__address__init(&p->addr);
	mesos__v1__resource__allocation_info__init(&p->ai);
	p->id.value = o->id;
	p->fid.value = o->fw->id;
	p->aid.value = (char *)a->id;
	p->addr.hostname = a->hostname;
	p->addr.ip = a->ip != NULL ? a->ip : "127.0.0.1";
	p->addr.port = a->port;
	p->url.scheme = "http";
	p->url.address = &p->addr;
	p->url.path = "/slave(1)";
	p->ai.role = "*";
	p->offer.id = &p->id;
	p->offer.framework_id = &p->fid;
	p->offer.agent_id = &p->aid;
	p->offer.hostname = a->hostname;
	p->offer.resources = bt_resources_to_pb(&o->resources, "*", &p->offer.n_resources);
	p->offer.attributes = bt_attributes_to_pb(&a->attributes, &p->offer.n_attributes);
	p->offer.url = &p->url;
	p->offer.allocation_info = &p->ai;
}

/*
 * The JSON text of an OFFERS event built one offer at a time: as one
 * jansson tree, ten thousand offers take some 100 MB at once, freed
 * right after, which leaves the heap fragmented. The event is encoded with
 * its first offer only to learn the text around the offers, and every
 * offer's own text is spliced in. Caller frees.
 */
static char *offers_json(Mesos__V1__Scheduler__Event *ev, size_t *len)
{
	Mesos__V1__Scheduler__Event__Offers *offers = ev->offers;
	size_t n = offers->n_offers, flen;
	struct evbuffer *out;
	char *whole, *first, *at, *text;
	json_t *j;

	offers->n_offers = 1;
	j = bt_pbjson_from_message(&ev->base);
	whole = bt_json_dump(j);
	json_decref(j);
	offers->n_offers = n;
	j = bt_pbjson_from_message(&offers->offers[0]->base);
	first = bt_json_dump(j);
	json_decref(j);
	flen = strlen(first);
	if ((at = strstr(whole, first)) == NULL) {
		free(whole);
		free(first);
		return bt_pb_encode_alloc(&ev->base, true, len);
	}
	out = evbuffer_new();
	evbuffer_add(out, whole, (size_t)(at - whole) + flen);
	for (size_t i = 1; i < n; i++) {
		j = bt_pbjson_from_message(&offers->offers[i]->base);
		text = bt_json_dump(j);
		json_decref(j);
		evbuffer_add(out, ",", 1);
		evbuffer_add(out, text, strlen(text));
		free(text);
	}
	evbuffer_add(out, at + flen, strlen(at + flen));
	*len = evbuffer_get_length(out);
	text = xmalloc(*len + 1);
	evbuffer_remove(out, text, *len);
	text[*len] = '\0';
	evbuffer_free(out);
	free(whole);
	free(first);
	return text;
}

static void send_offers(struct master_framework *fw)
{
	Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
	Mesos__V1__Scheduler__Event__Offers offers = MESOS__V1__SCHEDULER__EVENT__OFFERS__INIT;
	struct offer_pb *pbs = xcalloc(fw->npending, sizeof *pbs);
	Mesos__V1__Offer **list = xcalloc(fw->npending, sizeof *list);
	size_t n = fw->npending, len;
	char *text;

	for (size_t i = 0; i < n; i++) {
		offer_pb_fill(&pbs[i], fw->pending[i]);
		list[i] = &pbs[i].offer;
	}
	fw->npending = 0;
	offers.n_offers = n;
	offers.offers = list;
	ev.has_type = true;
	ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__OFFERS;
	ev.offers = &offers;
	log_debug("sending %zu offers to framework '%s'", n, fw->id);
	if (fw->json && n > 1 && fw->stream != NULL) {
		text = offers_json(&ev, &len);
		if (master_http_stream_send(fw->stream, text, len) != 0)
			log_warn("framework '%s': stream dropped", fw->id);
		free(text);
	} else {
		master_framework_send(fw, &ev);
	}
	for (size_t i = 0; i < n; i++) {
		bt_resources_pb_free(pbs[i].offer.resources, pbs[i].offer.n_resources);
		bt_attributes_pb_free(pbs[i].offer.attributes, pbs[i].offer.n_attributes);
	}
	free(list);
	free(pbs);
}

void master_offers_flush(struct master *m)
{
	size_t n;
	void **v = bt_map_values(&m->frameworks, &n);

	for (size_t i = 0; i < n; i++) {
		struct master_framework *fw = v[i];
		if (fw->npending > 0)
			send_offers(fw);
	}
	free(v);
}

struct master_offer *master_offer_find(struct master *m, const char *id)
{
	return bt_map_get(&m->offers, id);
}

/* unlink and free an offer without touching the allocator */
static void offer_discard(struct master_offer *o)
{
	struct master *m = o->fw->m;

	bt_map_remove(&m->offers, o->id);
	TAILQ_REMOVE(&o->fw->offers, o, fw_entry);
	TAILQ_REMOVE(&o->agent->offers, o, agent_entry);
	for (size_t i = 0; i < o->fw->npending; i++) {
		if (o->fw->pending[i] == o) {
			o->fw->pending[i] = o->fw->pending[--o->fw->npending];
			break;
		}
	}
	if (o->timeout_ev != NULL)
		event_free(o->timeout_ev);
	bt_resources_release(&o->resources);
	free(o->id);
	free(o);
}

static void send_rescind(struct master_offer *o)
{
	Mesos__V1__Scheduler__Event ev = MESOS__V1__SCHEDULER__EVENT__INIT;
	Mesos__V1__Scheduler__Event__Rescind r = MESOS__V1__SCHEDULER__EVENT__RESCIND__INIT;
	Mesos__V1__OfferID oid = MESOS__V1__OFFER_ID__INIT;

	oid.value = o->id;
	r.offer_id = &oid;
	ev.has_type = true;
	ev.type = MESOS__V1__SCHEDULER__EVENT__TYPE__RESCIND;
	ev.rescind = &r;
	master_framework_send(o->fw, &ev);
}

void master_offer_remove(struct master_offer *o, bool rescind, double refuse_seconds)
{
	struct master *m = o->fw->m;

	if (rescind)
		send_rescind(o);
	allocator_recover(m->allocator, o->agent->alloc, o->fw->alloc, &o->resources,
	    refuse_seconds, bt_monotonic());
	offer_discard(o);
}

void master_offers_rescind_agent(struct master_agent *a)
{
	struct master_offer *o;

	while ((o = TAILQ_FIRST(&a->offers)) != NULL)
		master_offer_remove(o, true, 0);
}

void master_offers_remove_framework(struct master_framework *fw, bool rescind)
{
	struct master_offer *o;

	while ((o = TAILQ_FIRST(&fw->offers)) != NULL)
		master_offer_remove(o, rescind, 0);
}

double master_refuse_seconds(const Mesos__V1__Filters *f)
{
	double s = DEFAULT_REFUSE_SECONDS;

	if (f != NULL && f->has_refuse_seconds && f->refuse_seconds >= 0)
		s = f->refuse_seconds;
	if (s > MASTER_MAX_REFUSE_SECONDS)
		s = MASTER_MAX_REFUSE_SECONDS;
	return s;
}

/* a master-generated update for a task that never made it into the table */
static void reject_task(struct master_framework *fw, const Mesos__V1__TaskInfo *ti, int state,
    int reason, const char *message)
{
	Mesos__V1__TaskStatus st = MESOS__V1__TASK_STATUS__INIT;

	master_status_fill(&st, ti->task_id, ti->agent_id, state, reason, message);
	log_info("task '%s' of framework '%s': %s: %s", ti->task_id->value, fw->id,
	    bt_task_state_name(state), message);
	master_framework_send_update(fw, &st);
}

/* every task of every LAUNCH or LAUNCH_GROUP in the call */
static void reject_all(struct master_framework *fw, const Mesos__V1__Scheduler__Call__Accept *acc,
    const char *why)
{
	int state = fw->partition_aware ? MESOS__V1__TASK_STATE__TASK_DROPPED :
	    MESOS__V1__TASK_STATE__TASK_LOST;

	for (size_t i = 0; i < acc->n_operations; i++) {
		Mesos__V1__Offer__Operation *op = acc->operations[i];
		if (op->launch != NULL) {
			for (size_t k = 0; k < op->launch->n_task_infos; k++)
				reject_task(fw, op->launch->task_infos[k], state,
				    MESOS__V1__TASK_STATUS__REASON__REASON_INVALID_OFFERS, why);
		}
		if (op->launch_group != NULL && op->launch_group->task_group != NULL) {
			for (size_t k = 0; k < op->launch_group->task_group->n_tasks; k++)
				reject_task(fw, op->launch_group->task_group->tasks[k], state,
				    MESOS__V1__TASK_STATUS__REASON__REASON_INVALID_OFFERS, why);
		}
	}
}

/* the offers named by the call; NULL with *why when one is not usable */
static struct master_offer **collect_offers(struct master_framework *fw,
    const Mesos__V1__Scheduler__Call__Accept *acc, size_t *n, char **why)
{
	struct master_offer **v = xcalloc(acc->n_offer_ids + 1, sizeof *v);

	*n = 0;
	if (acc->n_offer_ids == 0)
		*why = xstrdup("No offers specified");
	for (size_t i = 0; i < acc->n_offer_ids && *why == NULL; i++) {
		const char *id = acc->offer_ids[i]->value;
		struct master_offer *o = master_offer_find(fw->m, id);
		if (o == NULL || o->fw != fw) {
			*why = xasprintf("Offer %s is no longer valid", id);
			break;
		}
		for (size_t k = 0; k < *n; k++) {
			if (v[k] == o)
				*why = xasprintf("Duplicate offer %s in the same call", id);
		}
		if (*why == NULL && *n > 0 && o->agent != v[0]->agent)
			*why = xstrdup("Aggregated offers must belong to the same agent");
		if (*why == NULL)
			v[(*n)++] = o;
	}
	return v;
}

/* the rules of Mesos's common validation for ids; NULL when id is fine */
static char *id_problem(const char *id)
{
	size_t len = strlen(id);

	if (len == 0)
		return xstrdup("Task ID must not be empty");
	if (len > 255)
		return xstrdup("Task ID must not be longer than 255 characters");
	if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return xasprintf("Task ID '%s' is disallowed", id);
	for (const char *p = id; *p != '\0'; p++) {
		if (*p == '/' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return xasprintf("Task ID '%s' contains invalid characters", id);
	}
	return NULL;
}

/* NULL when the task may run on remaining; the reason otherwise (caller frees) */
static char *validate_task(struct master_framework *fw, struct master_agent *a,
    const Mesos__V1__TaskInfo *ti, const struct bt_resources *remaining,
    struct bt_map *seen, struct bt_resources *res)
{
	char *cause = NULL, *need, *have, *why;

	if (ti->task_id == NULL || ti->task_id->value == NULL)
		return xstrdup("Task has no ID");
	if ((why = id_problem(ti->task_id->value)) != NULL)
		return why;
	if (bt_map_get(&fw->tasks, ti->task_id->value) != NULL ||
	    bt_map_get(seen, ti->task_id->value) != NULL)
		return xasprintf("Task has duplicate ID: %s", ti->task_id->value);
	if (ti->agent_id == NULL || strcmp(ti->agent_id->value, a->id) != 0)
		return xasprintf("Task uses invalid agent: %s",
		    ti->agent_id != NULL ? ti->agent_id->value : "(none)");
	if (ti->executor != NULL && ti->command != NULL)
		return xstrdup("Task should have at least one (but not both) of CommandInfo or "
		    "ExecutorInfo present");
	if (ti->executor != NULL)
		return xstrdup("Task uses an executor; butte runs command tasks only");
	if (ti->command == NULL)
		return xstrdup("Task should have at least one (but not both) of CommandInfo or "
		    "ExecutorInfo present");
	if (bt_resources_from_pb(res, ti->resources, ti->n_resources, &cause) != 0) {
		why = xasprintf("Task uses invalid resources: %s", cause);
		free(cause);
		return why;
	}
	if (bt_resources_empty(res))
		return xstrdup("Task uses no resources");
	if (!bt_resources_contains(remaining, res)) {
		need = bt_resources_format(res);
		have = bt_resources_format(remaining);
		why = xasprintf("Task uses more resources %s than available %s", need, have);
		free(need);
		free(have);
		return why;
	}
	return NULL;
}

static void send_launch(struct master_framework *fw, struct master_agent *a,
    Mesos__V1__TaskInfo **tasks, size_t n)
{
	Butte__AgentEvent ev = BUTTE__AGENT_EVENT__INIT;
	Butte__AgentEvent__Launch launch = BUTTE__AGENT_EVENT__LAUNCH__INIT;

	launch.framework = fw->info;
	launch.n_tasks = n;
	launch.tasks = tasks;
	ev.has_type = true;
	ev.type = BUTTE__AGENT_EVENT__TYPE__LAUNCH;
	ev.launch = &launch;
	master_agent_send(a, &ev);
}

/* validate and launch the tasks of one LAUNCH operation; appends to *launched */
static void launch_tasks(struct master_framework *fw, struct master_agent *a,
    const Mesos__V1__Offer__Operation__Launch *l, struct bt_resources *remaining,
    struct bt_map *seen, Mesos__V1__TaskInfo **launched, size_t *nlaunched)
{
	for (size_t k = 0; k < l->n_task_infos; k++) {
		Mesos__V1__TaskInfo *ti = l->task_infos[k];
		struct bt_resources res;
		char *why;

		bt_resources_init(&res);
		why = validate_task(fw, a, ti, remaining, seen, &res);
		if (why != NULL) {
			if (ti->task_id != NULL && ti->task_id->value != NULL)
				reject_task(fw, ti, MESOS__V1__TASK_STATE__TASK_ERROR,
				    MESOS__V1__TASK_STATUS__REASON__REASON_TASK_INVALID, why);
			free(why);
			bt_resources_release(&res);
			continue;
		}
		bt_resources_subtract(remaining, &res);
		bt_map_put(seen, ti->task_id->value, ti);
		master_task_new(fw, a, ti, &res);
		launched[(*nlaunched)++] = ti;
		log_info("launching task '%s' of framework '%s' on agent '%s'", ti->task_id->value,
		    fw->id, a->id);
		bt_resources_release(&res);
	}
}

static size_t count_tasks(const Mesos__V1__Scheduler__Call__Accept *acc)
{
	size_t n = 0;

	for (size_t i = 0; i < acc->n_operations; i++) {
		if (acc->operations[i]->launch != NULL)
			n += acc->operations[i]->launch->n_task_infos;
	}
	return n;
}

void master_accept(struct master_framework *fw, const Mesos__V1__Scheduler__Call__Accept *acc)
{
	struct master *m = fw->m;
	double refuse = master_refuse_seconds(acc->filters);
	struct bt_resources remaining;
	struct bt_map seen;
	struct master_agent *a;
	struct master_offer **offers;
	Mesos__V1__TaskInfo **launched;
	size_t n, nlaunched = 0;
	char *why = NULL;

	offers = collect_offers(fw, acc, &n, &why);
	if (why != NULL) {
		for (size_t i = 0; i < n; i++)
			master_offer_remove(offers[i], false, 0);
		reject_all(fw, acc, why);
		free(why);
		free(offers);
		return;
	}
	a = offers[0]->agent;
	bt_resources_init(&remaining);
	for (size_t i = 0; i < n; i++) {
		bt_resources_add(&remaining, &offers[i]->resources);
		offer_discard(offers[i]);
	}
	bt_map_init(&seen);
	launched = xcalloc(count_tasks(acc) + 1, sizeof *launched);
	for (size_t i = 0; i < acc->n_operations; i++) {
		Mesos__V1__Offer__Operation *op = acc->operations[i];
		if (op->launch != NULL) {
			launch_tasks(fw, a, op->launch, &remaining, &seen, launched, &nlaunched);
		} else if (op->launch_group != NULL && op->launch_group->task_group != NULL) {
			for (size_t k = 0; k < op->launch_group->task_group->n_tasks; k++)
				reject_task(fw, op->launch_group->task_group->tasks[k],
				    MESOS__V1__TASK_STATE__TASK_ERROR,
				    MESOS__V1__TASK_STATUS__REASON__REASON_TASK_GROUP_INVALID,
				    "LAUNCH_GROUP needs an executor; butte runs command tasks only");
		} else {
			log_warn("framework '%s': offer operation %d is not supported; ignored",
			    fw->id, op->has_type ? (int)op->type : 0);
		}
	}
	if (nlaunched > 0)
		send_launch(fw, a, launched, nlaunched);
	if (!bt_resources_empty(&remaining))
		allocator_recover(m->allocator, a->alloc, fw->alloc, &remaining, refuse,
		    bt_monotonic());
	bt_resources_release(&remaining);
	bt_map_release(&seen);
	free(launched);
	free(offers);
}

void master_decline(struct master_framework *fw, const Mesos__V1__Scheduler__Call__Decline *dec)
{
	double refuse = master_refuse_seconds(dec->filters);

	for (size_t i = 0; i < dec->n_offer_ids; i++) {
		struct master_offer *o = master_offer_find(fw->m, dec->offer_ids[i]->value);
		if (o == NULL || o->fw != fw) {
			log_info("framework '%s' declined unknown offer '%s'", fw->id,
			    dec->offer_ids[i]->value);
			continue;
		}
		master_offer_remove(o, false, refuse);
	}
}
