/*
 * fuzz_attributes.c -- fuzz target for bt_attributes_parse().
 *
 * The input, as a NUL-terminated string, is parsed as --attributes text;
 * whatever parses must format to text that parses back to the same
 * attributes, or the target aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attributes.h"

static int same(const struct bt_attributes *a, const struct bt_attributes *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, b->v[i].name) != 0 ||
		    !bt_value_equal(&a->v[i].value, &b->v[i].value))
			return 0;
	return 1;
}

static void check(const struct bt_attributes *a, const char *input)
{
	struct bt_attributes again;
	char *text = bt_attributes_format(a), *cause = NULL;

	if (bt_attributes_parse(&again, text, &cause) != 0) {
		fprintf(stderr, "'%s' formatted as '%s' does not parse: %s\n", input, text, cause);
		abort();
	}
	if (!same(a, &again)) {
		fprintf(stderr, "'%s' formatted as '%s' parses differently\n", input, text);
		abort();
	}
	bt_attributes_release(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *input = malloc(size + 1), *cause = NULL;
	struct bt_attributes a;

	if (input == NULL)
		return 0;
	memcpy(input, data, size);
	input[size] = '\0';
	if (bt_attributes_parse(&a, input, &cause) == 0) {
		check(&a, input);
		bt_attributes_release(&a);
	} else {
		if (cause == NULL || a.n != 0)
			abort();
		free(cause);
	}
	free(input);
	return 0;
}
