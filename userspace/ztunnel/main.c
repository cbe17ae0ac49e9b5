// SPDX-License-Identifier: Apache-2.0
/*
 * ztunnel: the per-node L4 proxy (capture listeners 15001/15006, HBONE 15008, mTLS with
 * SPIFFE identities, L4 policy). Not implemented yet: this entry point only
 * answers --help and --version, and refuses to start rather than pretend to proxy.
 */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: ztunnel --config FILE --node NAME [--netns PATH]\n"
		   "       ztunnel --check --config FILE\n"
		   "       ztunnel --help | --version\n"
		   "\n"
		   "The per-node L4 proxy of zmesh. Not implemented yet: see README.md, 'Status'.\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("ztunnel (zmesh) 0.1.0\n");
		return 0;
	}
	usage(stderr);
	fprintf(stderr, "ztunnel: not implemented yet, refusing to start\n");
	return 2;
}
