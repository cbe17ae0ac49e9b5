// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for what the Kubernetes API sends ztunnel (lib/kube): the input is a
 * sequence of lines, each "<kind digit><verb>" then the text, where the verb is 'w' (a watch
 * event line), 'l' (a list page: begin, page, commit or abort) or 'p' (an object a GET
 * answered); after every line the store is translated into the config model and the
 * policies into Istio YAML. Nothing may crash, leak or hang; every build must finalize (the
 * translation settles whatever the objects claim), and the policy text must load in lib/rbac
 * (each object was checked alone, duplicates are impossible by key). Seeds:
 * tests/data/kube/ (one scenario per file).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube/kube.h"
#include "rbac/rbac.h"

static char fuzz_log[8192];

static void fuzz_check(struct zm_kube_store *st)
{
	struct zm_kube_opts o = {.node = "n1"};
	struct zm_rbac_set *set = NULL;
	struct zm_config *cfg = NULL;
	char err[2048], *text;
	size_t n;
	int r = zm_kube_store_build(st, &o, &cfg, fuzz_log, sizeof(fuzz_log), err, sizeof(err));

	if (r && r != -ENOMEM)
		abort(); /* the translation must always give a model that finalizes */
	zm_config_free(cfg);
	text = zm_kube_store_policies(st, &n);
	if (text && zm_rbac_load_buf("kube", text, strlen(text), &set, err, sizeof(err)) &&
	    !strstr(err, "out of memory"))
		abort();
	zm_rbac_set_free(set);
	free(text);
}

static void fuzz_line(struct zm_kube_store *st, const char *p, size_t len)
{
	char rv[ZM_KUBE_RV_LEN], cont[ZM_KUBE_CONT_LEN];
	enum zm_kube_kind k;
	char *copy;

	if (len < 2)
		return;
	k = (enum zm_kube_kind)((unsigned char)p[0] % ZM_KUBE_N_KINDS);
	copy = malloc(len - 1); /* exact size: ASan sees any overrun */
	if (!copy)
		return;
	memcpy(copy, p + 2, len - 2);
	copy[len - 2] = '\0';
	switch (p[1]) {
	case 'l':
		zm_kube_store_list_begin(st, k);
		if (zm_kube_store_list_page(st, k, copy, len - 2, rv, cont, fuzz_log,
					    sizeof(fuzz_log)) ||
		    cont[0])
			zm_kube_store_list_abort(st, k);
		else
			zm_kube_store_list_commit(st, k);
		break;
	case 'p':
		zm_kube_store_put(st, k, copy, len - 2, fuzz_log, sizeof(fuzz_log));
		break;
	default:
		zm_kube_store_event(st, k, copy, len - 2, rv, fuzz_log, sizeof(fuzz_log));
		break;
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zm_kube_store *st = zm_kube_store_new();
	const char *p = (const char *)data, *end = p + size, *nl;

	if (!st)
		return 0;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		fuzz_line(st, p, (size_t)((nl ? nl : end) - p));
		fuzz_check(st);
		p = nl ? nl + 1 : end;
	}
	zm_kube_store_free(st);
	return 0;
}
