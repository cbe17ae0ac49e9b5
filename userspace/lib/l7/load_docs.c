// SPDX-License-Identifier: Apache-2.0
/*
 * Loading many small named documents (the waypoint's objects from the Kubernetes API) with
 * the --config files, where one broken object must not cost the others: the loader is asked
 * to load everything, the documents its errors name are set aside (replaced by their last good
 * version, or left out) and the rest is loaded again. Every round sets aside at least one more
 * document, so there are at most as many rounds as documents, plus one with the fallbacks.
 * Cross-references are the loader's own checks (a VirtualService naming a subset that only a
 * broken DestinationRule defines goes with it), so nothing here knows the kinds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l7/internal.h"

/* text's line (len bytes) appended to notes (size len_notes) unless notes has it already. */
static void l7_notes_add(char *notes, size_t size, const char *line, size_t len)
{
	size_t used = strlen(notes);

	if (!len || used + len + 2 > size)
		return;
	if (memmem(notes, used, line, len))
		return;
	memcpy(notes + used, line, len);
	notes[used + len] = '\n';
	notes[used + len + 1] = '\0';
}

/* Marks the documents that lines of err start with ("NAME:"), their lines into notes. */
static size_t l7_docs_blame(struct l7_doc *docs, size_t n, const char *err, char *notes,
			    size_t size)
{
	const char *p, *nl;
	size_t i, found = 0, len, k;

	for (p = err; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		for (i = 0; i < n; i++) {
			k = strlen(docs[i].name);
			if (k >= len || strncmp(p, docs[i].name, k) || p[k] != ':')
				continue;
			found += !docs[i].bad;
			docs[i].bad = true;
			l7_notes_add(notes, size, p, len);
			break;
		}
	}
	return found;
}

/* Load, setting aside what the errors name, until it loads or the errors name none. */
static int l7_docs_rounds(const char *const *files, size_t n_files, struct l7_doc *docs,
			  size_t n_docs, const struct zm_config *mesh, struct l7_config **out,
			  char *tmp, char *notes, size_t len)
{
	int r;

	for (;;) {
		r = l7_load_set(files, n_files, docs, n_docs, mesh, out, tmp, len);
		if (r != -EINVAL || !l7_docs_blame(docs, n_docs, tmp, notes, len))
			return r;
	}
}

int l7_config_load_docs(const char *const *files, size_t n_files, struct l7_doc *docs,
			size_t n_docs, const struct zm_config *mesh, struct l7_config **out,
			char *notes, size_t len)
{
	char *tmp = malloc(len ? len : 1), line[600];
	bool again = false;
	size_t i;
	int r;

	*out = NULL;
	if (!tmp || !len) {
		free(tmp);
		return -ENOMEM;
	}
	notes[0] = '\0';
	for (i = 0; i < n_docs; i++)
		docs[i].bad = docs[i].fell_back = false;
	r = l7_docs_rounds(files, n_files, docs, n_docs, mesh, out, tmp, notes, len);
	for (i = 0; !r && i < n_docs; i++) {
		if (!docs[i].bad || !docs[i].fallback || !strcmp(docs[i].fallback, docs[i].text))
			continue;
		docs[i].text = docs[i].fallback;
		docs[i].fell_back = true;
		again = true;
	}
	if (again) {
		l7_config_free(*out);
		for (i = 0; i < n_docs; i++)
			docs[i].bad = docs[i].bad && !docs[i].fell_back;
		r = l7_docs_rounds(files, n_files, docs, n_docs, mesh, out, tmp, notes, len);
	}
	for (i = 0; !r && i < n_docs; i++) {
		if (!docs[i].bad && !docs[i].fell_back)
			continue;
		snprintf(line, sizeof(line), "%s: %s until it is fixed", docs[i].name,
			 docs[i].bad ? "left out" : "its previous version is kept");
		l7_notes_add(notes, len, line, strlen(line));
	}
	if (r)
		snprintf(notes, len, "%s", tmp);
	free(tmp);
	return r;
}
