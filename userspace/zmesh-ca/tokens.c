// SPDX-License-Identifier: Apache-2.0
/*
 * Bearer-token callers of zmesh-ca (see ca.h, zca_token_caller): istiod authenticates a
 * ztunnel by its Kubernetes service-account token instead of a client certificate; a
 * ztunnel configured for istiod (--ca-token-file) can use zmesh-ca the same way when the CA
 * is given the tokens it should accept and the node each one stands for.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "ca.h"

int zca_token_caller(struct zca *z, const char *token, struct zca_caller *out)
{
	char line[4352], node[64];
	size_t tl = strlen(token);
	FILE *f = fopen(z->tokens_path, "re");
	int r = -EACCES;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *sp = strchr(line, ' ');

		if (line[0] == '#' || !sp || sscanf(sp + 1, "%63s", node) != 1)
			continue;
		if ((size_t)(sp - line) == tl && CRYPTO_memcmp(line, token, tl) == 0) {
			snprintf(out->id, sizeof(out->id), "%s", z->node_account);
			snprintf(out->node, sizeof(out->node), "%s", node);
			r = 0;
			break;
		}
	}
	fclose(f);
	explicit_bzero(line, sizeof(line));
	return r;
}
