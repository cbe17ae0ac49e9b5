// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for what a runtime hands zmesh-cni (lib/cni): the first byte picks the
 * parser (network config with prevResult, CNI_ARGS, conflist insert, conflist remove), the
 * rest is its input, copied into an exact-size heap block so ASan sees any overrun. Every
 * parser must return 0 or a code without crashing or hanging and leave a terminated message;
 * an accepted config must give back a result that parses as JSON; an inserted conflist must
 * be a fixed point (inserting again changes nothing) and removing must undo the chain.
 * Seed corpus: tests/data/cni_conf/ (first byte '0': config, '2': CNI_ARGS, '{': conflist).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cni/cni.h"

static const char fuzz_entry[] =
    "{\"type\":\"zmesh-cni\",\"socketPath\":\"/var/run/zmesh/cni.sock\"}";

static void fuzz_conf(const char *buf, size_t len)
{
	struct zm_cni_conf c;
	char err[256] = "x", *out;
	int r = zm_cni_conf_parse(buf, len, "eth0", &c, err, sizeof(err));

	if (r && !memchr(err, '\0', sizeof(err)))
		abort();
	if (!r && c.has_prev) {
		out = zm_cni_result_json(&c);
		if (!out)
			abort(); /* prevResult was JSON once: it must print again */
		free(out);
	}
	if (!r && c.n_addrs > ZM_CNI_MAX_ADDRS)
		abort();
	zm_cni_conf_free(&c);
	out = zm_cni_error_json(c.cni_version, 7, "m", "d");
	free(out);
}

static void fuzz_args(const char *buf, size_t len)
{
	struct zm_cni_pod pod;
	char err[128], *s = malloc(len + 1);

	if (!s)
		abort();
	memcpy(s, buf, len);
	s[len] = '\0';
	if (!zm_cni_args_parse(s, &pod, err, sizeof(err)) &&
	    (strlen(pod.namespace) >= sizeof(pod.namespace) ||
	     strlen(pod.name) >= sizeof(pod.name)))
		abort();
	free(s);
}

static void fuzz_conflist(const char *buf, size_t len)
{
	char err[256], *out = NULL, *again = NULL, *removed = NULL;
	bool changed;

	if (zm_cni_conflist_insert(buf, len, fuzz_entry, &out, &changed, err, sizeof(err)))
		return;
	/* Refusal is fine here only for depth: wrapping a .conf nests it two levels deeper. */
	if (!zm_cni_conflist_insert(out, strlen(out), fuzz_entry, &again, &changed, err,
				    sizeof(err))) {
		if (changed)
			abort(); /* a second install must find its entry and change nothing */
		if (zm_cni_conflist_remove(again, strlen(again), &removed, &changed, err,
					   sizeof(err)) ||
		    !changed)
			abort(); /* and uninstall must find it again */
	}
	free(out);
	free(again);
	free(removed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf;

	if (size < 1)
		return 0;
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	switch (data[0] % 4) {
	case 0:
	case 1:
		fuzz_conf(buf, size - 1);
		break;
	case 2:
		fuzz_args(buf, size - 1);
		break;
	default:
		fuzz_conflist(buf, size - 1);
		break;
	}
	free(buf);
	return 0;
}
