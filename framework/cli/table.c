/*
 * table.c -- aligned text tables for the CLI's listings.
 *
 * Rows are collected first (the header is row 0), then printed with each
 * column as wide as its widest cell, two spaces apart; the last column
 * is not padded. Cells are copied, so callers may pass stack buffers.
 */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmalloc.h"

struct cli_table {
	size_t ncols, nrows;
	char **cells;                   /* nrows * ncols */
};

static void add_row(struct cli_table *t, va_list ap)
{
	const char *s;
	size_t i;

	t->cells = xreallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof *t->cells);
	for (i = 0; i < t->ncols; i++) {
		s = va_arg(ap, const char *);
		t->cells[t->nrows * t->ncols + i] = xstrdup(s != NULL ? s : "-");
	}
	t->nrows++;
}

struct cli_table *cli_table_new(size_t ncols, ...)
{
	struct cli_table *t = xcalloc(1, sizeof *t);
	va_list ap;

	t->ncols = ncols;
	va_start(ap, ncols);
	add_row(t, ap);
	va_end(ap);
	return t;
}

void cli_table_add(struct cli_table *t, ...)
{
	va_list ap;

	va_start(ap, t);
	add_row(t, ap);
	va_end(ap);
}

void cli_table_print(const struct cli_table *t)
{
	size_t *width = xcalloc(t->ncols, sizeof *width), r, c, n;

	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			n = strlen(t->cells[r * t->ncols + c]);
			if (n > width[c])
				width[c] = n;
		}
	}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			if (c + 1 == t->ncols)
				printf("%s\n", t->cells[r * t->ncols + c]);
			else
				printf("%-*s  ", (int)width[c], t->cells[r * t->ncols + c]);
		}
	}
	free(width);
}

void cli_table_free(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
