/*
 * fuzz_duration.c -- bt_duration_parse() on arbitrary text.
 *
 * The input becomes a NUL-terminated string; a duration that parses must
 * be finite and not negative, and a rejected one must come with a cause.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char *cause = NULL;
	double seconds = -1;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (bt_duration_parse(text, &seconds, &cause) == 0) {
		if (!isfinite(seconds) || seconds < 0)
			abort();
	} else if (cause == NULL) {
		abort();
	}
	free(cause);
	free(text);
	return 0;
}
