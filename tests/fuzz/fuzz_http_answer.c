/*
 * fuzz_http_answer.c -- the HTTP pipe's answer parser on arbitrary streams.
 *
 * The first input byte picks the size of the pieces the rest is fed in,
 * as they would come off a socket. parse_answer() runs after each piece;
 * when an answer is complete it starts over on the bytes left, as the
 * connection's read callback does, until the input runs out or the stream
 * is broken. An error always says why; a complete answer has a final
 * status, a body within the limit and, when it gave a Content-Length and
 * may have a body, exactly that many bytes; a parser waiting for a line
 * holds no complete line and no more than the line limit; one waiting for
 * body bytes has taken all there were. Input is bounded so a run stays fast.
 */
#include <stdint.h>

#include "../../common/http_pipe.c"

#define FUZZ_INPUT_MAX (1 << 16)

static bool waits_for_line(enum answer_state s)
{
	return s == A_STATUS || s == A_HEADERS || s == A_CHUNK_SIZE || s == A_CHUNK_END ||
	    s == A_TRAILERS;
}

/* what must hold after one call of parse_answer() that returned rc */
static void check(const struct answer *a, struct evbuffer *in, int rc, const char *why)
{
	size_t body = evbuffer_get_length(a->body);

	if (body > MAX_BODY || (a->status != 0 && (a->status < 100 || a->status > 599)))
		abort();
	switch (rc) {
	case PARSE_ERROR:
		if (why == NULL || why[0] == '\0')
			abort();
		return;
	case PARSE_DONE:
		if (why != NULL || a->status < 200)
			abort();
		if ((a->status == 204 || a->status == 304) && body != 0)
			abort();
		if (!a->chunked && a->length >= 0 && a->status != 204 && a->status != 304 &&
		    body != (size_t)a->length)
			abort();
		return;
	case PARSE_AGAIN:
		if (why != NULL)
			abort();
		if (waits_for_line(a->state)) {
			if (evbuffer_get_length(in) > MAX_LINE ||
			    evbuffer_search(in, "\n", 1, NULL).pos >= 0)
				abort();
		} else if (evbuffer_get_length(in) != 0) {
			abort();
		}
		return;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct answer a = { 0 };
	struct evbuffer *in;
	size_t piece, off = 0, answers = 0;
	char *why = NULL;
	int rc = PARSE_AGAIN;

	if (size < 1 || size > FUZZ_INPUT_MAX)
		return 0;
	/* mostly small pieces; from 240 on, large ones */
	piece = data[0] < 240 ? (size_t)data[0] % 17 + 1 : (size_t)(data[0] - 239) * 1024;
	data++;
	size--;
	in = evbuffer_new();
	answer_reset(&a);
	while (off < size && rc != PARSE_ERROR) {
		size_t n = size - off < piece ? size - off : piece;

		evbuffer_add(in, data + off, n);
		off += n;
		do {
			rc = parse_answer(&a, in, &why);
			check(&a, in, rc, why);
			if (rc == PARSE_DONE) {
				answers++;
				answer_reset(&a);
			}
		} while (rc == PARSE_DONE && evbuffer_get_length(in) > 0);
	}
	/* every answer takes at least its status line */
	if (answers > size / 13)
		abort();
	free(why);
	evbuffer_free(a.body);
	evbuffer_free(in);
	return 0;
}
