/*
 * driver.c -- replay inputs through a fuzz target without libFuzzer.
 *
 * Every fuzz target defines LLVMFuzzerTestOneInput(). With clang and
 * FUZZER=libfuzzer the target is linked against libFuzzer for real
 * fuzzing; otherwise this driver is linked instead, so the targets build
 * with every `make` and `make test` replays their corpus as a regression
 * test. Arguments are files or directories of files; with none, stdin.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_stream(FILE *f)
{
	size_t cap = 4096, len = 0, n;
	uint8_t *buf = malloc(cap);

	if (buf == NULL)
		return -1;
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *bigger = realloc(buf, cap * 2);
			if (bigger == NULL) {
				free(buf);
				return -1;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int run_path(const char *path)
{
	struct stat st;
	FILE *f;
	int rc;

	if (stat(path, &st) != 0) {
		fprintf(stderr, "unable to read '%s'\n", path);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		rc = 0;
		if (d == NULL)
			return -1;
		while ((e = readdir(d)) != NULL) {
			char child[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(child, sizeof child, "%s/%s", path, e->d_name);
			if (run_path(child) != 0)
				rc = -1;
		}
		closedir(d);
		return rc;
	}
	f = fopen(path, "rb");
	if (f == NULL)
		return -1;
	rc = run_stream(f);
	fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	int i, rc = 0;

	if (argc < 2)
		return run_stream(stdin) == 0 ? 0 : 1;
	for (i = 1; i < argc; i++)
		if (run_path(argv[i]) != 0)
			rc = 1;
	return rc;
}
