/*
 * events.h -- what the event bus (events.c: subscribers, framing,
 * publishing) and the events relay publishes (events_emit.c) share.
 * Private to those two files.
 */
#ifndef RELAY_EVENTS_H
#define RELAY_EVENTS_H

#include "relay.h"

enum ev_type {
	ET_STATUS_UPDATE,
	ET_INSTANCE_CHANGED,
	ET_HEALTH_CHANGED,
	ET_FAILED_HEALTH_CHECK,
	ET_UNHEALTHY_KILL,
	ET_API_POST,
	ET_DEPLOYMENT_INFO,
	ET_DEPLOYMENT_STEP_SUCCESS,
	ET_DEPLOYMENT_SUCCESS,
	ET_DEPLOYMENT_FAILED,
	ET_APP_TERMINATED,
	ET_ATTACHED,
	ET_DETACHED,
	ET_COUNT
};

#define BIT(t)          (1u << (t))
#define DEPLOYMENT_BITS (BIT(ET_DEPLOYMENT_INFO) | BIT(ET_DEPLOYMENT_STEP_SUCCESS) | \
	BIT(ET_DEPLOYMENT_SUCCESS) | BIT(ET_DEPLOYMENT_FAILED))

struct sub;

/* a deployment announced to subscribers: its plan stays the same until it ends */
struct plan {
	TAILQ_ENTRY(plan) entry;
	char *id;
	char *version;
	json_t *steps;
	json_t *original;               /* root group before the change */
	json_t *target;                 /* root group after it; NULL until announced */
	size_t current;                 /* the step in progress when it was created */
};

struct relay_events {
	struct relay *r;
	TAILQ_HEAD(, sub) subs;
	TAILQ_HEAD(, plan) plans;
	uint32_t wanted;                /* union of the live subscribers' masks */
	struct event *reap;             /* frees dead subscribers */
};

/* some live subscriber wants one of the types in bits */
bool relay_events_wants(struct relay *r, uint32_t bits);
/* a new event of type with eventType and timestamp */
json_t *relay_events_new(enum ev_type type);
/* send ev to every subscriber that wants its type (takes ev) */
void relay_events_publish(struct relay_events *b, enum ev_type type, json_t *ev);
void relay_events_plan_free(struct plan *p);

#endif
