/*
 * http.c -- the CLI's HTTP requests: blocking libcurl easy calls.
 *
 * The CLI is a short-lived program that does one thing and exits, so a
 * blocking request is the simplest correct choice here (the daemons use
 * common/http_client.h in their event loops instead). Every answer is
 * read whole; JSON answers are decoded with bt_json_parse, and error
 * answers are shown the way relay or the master wrote them: Marathon's
 * {"message": ..., "details": [...]}.
 */
#include "cli.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "xmalloc.h"

#define MAX_BODY (64u << 20)

static size_t body_cb(char *data, size_t size, size_t n, void *arg)
{
	struct cli_response *r = arg;
	size_t len = size * n;

	if (r->len + len > MAX_BODY)
		return 0;
	r->body = xrealloc(r->body, r->len + len + 1);
	memcpy(r->body + r->len, data, len);
	r->len += len;
	r->body[r->len] = '\0';
	return len;
}

static size_t header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct cli_response *r = arg;
	size_t len = size * n, name = strlen("Marathon-Deployment-Id:");
	const char *v, *end;

	if (len > name && strncasecmp(data, "Marathon-Deployment-Id:", name) == 0) {
		v = data + name;
		end = data + len;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
			end--;
		free(r->deployment_id);
		r->deployment_id = xstrndup(v, (size_t)(end - v));
	}
	return len;
}

int cli_http(const char *method, const char *base, const char *path, const char *body,
    double timeout, struct cli_response *r, char **cause)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	char *url = xasprintf("%s%s", base, path);
	CURL *curl = curl_easy_init();
	CURLcode code;
	int rc = -1;

	memset(r, 0, sizeof *r);
	r->body = xstrdup("");
	headers = curl_slist_append(headers, "Accept: application/json");
	if (body != NULL)
		headers = curl_slist_append(headers, "Content-Type: application/json");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	code = curl_easy_perform(curl);
	if (code != CURLE_OK) {
		r->refused = code == CURLE_COULDNT_CONNECT;
		*cause = xasprintf("%s %s: %s", method, url,
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(code));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	rc = 0;
out:
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	free(url);
	return rc;
}

void cli_response_release(struct cli_response *r)
{
	free(r->body);
	free(r->deployment_id);
	r->body = NULL;
	r->deployment_id = NULL;
}

void cli_not_listening(const char *base)
{
	cli_error("nothing is listening at %s (is the cluster up? try 'butte up')", base);
}

/* one line per {"path": p, "errors": [...]} entry, or the details as text */
static void print_details(const json_t *details)
{
	const json_t *d, *e;
	size_t i, j;
	char *text;

	if (json_is_string(details)) {
		fprintf(stderr, "  %s\n", json_string_value(details));
		return;
	}
	if (!json_is_array(details)) {
		text = bt_json_dump(details);
		fprintf(stderr, "  %s\n", text);
		free(text);
		return;
	}
	json_array_foreach(details, i, d) {
		const char *p = json_string_value(json_object_get(d, "path"));
		json_array_foreach(json_object_get(d, "errors"), j, e)
			fprintf(stderr, "  %s: %s\n", p != NULL ? p : "/",
			    json_string_value(e) != NULL ? json_string_value(e) : "?");
	}
}

void cli_print_http_error(const char *what, const struct cli_response *r)
{
	char *cause = NULL;
	json_t *j = r->len > 0 ? bt_json_parse(r->body, r->len, &cause) : NULL;
	const char *msg = j != NULL ? json_string_value(json_object_get(j, "message")) : NULL;
	const json_t *details = j != NULL ? json_object_get(j, "details") : NULL;

	if (msg != NULL)
		cli_error("%s: %s (HTTP %ld)", what, msg, r->status);
	else if (r->len > 0 && r->len < 400)
		cli_error("%s: HTTP %ld: %s", what, r->status, r->body);
	else
		cli_error("%s: HTTP %ld", what, r->status);
	if (details != NULL && !json_is_null(details))
		print_details(details);
	json_decref(j);
	free(cause);
}

int cli_json(const char *method, const char *base, const char *path, const char *body,
    json_t **out, struct cli_response *keep)
{
	struct cli_response r;
	char *cause = NULL, *what = NULL;
	int rc = -1;

	*out = NULL;
	if (cli_http(method, base, path, body, 30, &r, &cause) == -1) {
		if (r.refused)
			cli_not_listening(base);
		else
			cli_error("%s", cause);
		goto out;
	}
	if (r.status < 200 || r.status > 299) {
		what = xasprintf("%s %.*s", method, (int)strcspn(path, "?"), path);
		cli_print_http_error(what, &r);
		goto out;
	}
	*out = r.len > 0 ? bt_json_parse(r.body, r.len, &cause) : json_object();
	if (*out == NULL) {
		cli_error("%s %s%s: answer is not JSON: %s", method, base, path, cause);
		goto out;
	}
	rc = 0;
out:
	if (keep != NULL && rc == 0) {
		*keep = r;
	} else {
		cli_response_release(&r);
	}
	free(what);
	free(cause);
	return rc;
}

char *cli_app_path(const char *id, const char *suffix)
{
	while (*id == '/')
		id++;
	return xasprintf("/v2/apps/%s%s", id, suffix != NULL ? suffix : "");
}
