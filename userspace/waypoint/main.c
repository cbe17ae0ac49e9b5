// SPDX-License-Identifier: Apache-2.0
/*
 * waypoint: the L7 proxy (HBONE in on 15008, Istio VirtualService / DestinationRule /
 * AuthorizationPolicy semantics, HBONE out). Not implemented yet: this entry point only
 * answers --help and --version, and refuses to start rather than pretend to proxy.
 */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f, "usage: waypoint --config FILE [--identity SPIFFE_ID] [--netns PATH]\n"
		   "       waypoint --help | --version\n"
		   "\n"
		   "The L7 proxy of zmesh. Not implemented yet: see README.md, 'Status'.\n");
}

int main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("waypoint (zmesh) 0.1.0\n");
		return 0;
	}
	usage(stderr);
	fprintf(stderr, "waypoint: not implemented yet, refusing to start\n");
	return 2;
}
