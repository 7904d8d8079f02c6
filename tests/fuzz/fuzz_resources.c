/*
 * fuzz_resources.c -- fuzz target for bt_resources_parse().
 *
 * The input, as a NUL-terminated string, is parsed as --resources text (or
 * JSON when it starts with '['). Whatever parses must format, in the same
 * form, into text that parses back to the same resources; r - r must be
 * empty, nothing + r must be r and r + r must contain r. Any difference
 * aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resources.h"

static int same(const struct bt_resources *a, const struct bt_resources *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, b->v[i].name) != 0 ||
		    strcmp(a->v[i].role, b->v[i].role) != 0 ||
		    !bt_value_equal(&a->v[i].value, &b->v[i].value))
			return 0;
	return 1;
}

/*
 * The text form of r, or for JSON input (whose names may hold ';' and
 * other characters the text form cannot carry) the JSON form.
 */
static char *reformat(const struct bt_resources *r, const char *input)
{
	json_t *j;
	char *text;

	input += strspn(input, " \t\r\n\v\f");
	if (*input != '[')
		return bt_resources_format(r);
	j = bt_resources_to_json(r);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (text == NULL)
		abort();
	return text;
}

static void check(const struct bt_resources *r, const char *input)
{
	struct bt_resources again, sum;
	char *text = reformat(r, input), *cause = NULL;

	if (bt_resources_parse(&again, text, NULL, &cause) != 0) {
		fprintf(stderr, "'%s' formatted as '%s' does not parse: %s\n", input, text, cause);
		abort();
	}
	if (!same(r, &again)) {
		fprintf(stderr, "'%s' formatted as '%s' parses differently\n", input, text);
		abort();
	}
	/* r - r is empty, {} + r is r, r + r contains r */
	bt_resources_copy(&sum, r);
	if (bt_resources_subtract(&sum, r) != 0 || sum.n != 0) {
		fprintf(stderr, "'%s': subtracting itself does not leave nothing\n", input);
		abort();
	}
	bt_resources_add(&sum, r);
	if (!same(&sum, r)) {
		fprintf(stderr, "'%s': adding to nothing does not give itself\n", input);
		abort();
	}
	bt_resources_add(&sum, r);
	if (!bt_resources_contains(&sum, r) || !bt_resources_contains(r, r)) {
		fprintf(stderr, "'%s': a sum does not contain its part\n", input);
		abort();
	}
	bt_resources_release(&sum);
	bt_resources_release(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *input = malloc(size + 1), *cause = NULL;
	struct bt_resources r;

	if (input == NULL)
		return 0;
	memcpy(input, data, size);
	input[size] = '\0';
	if (bt_resources_parse(&r, input, NULL, &cause) == 0) {
		check(&r, input);
		bt_resources_release(&r);
	} else {
		if (cause == NULL || r.n != 0)
			abort();
		free(cause);
	}
	free(input);
	return 0;
}
