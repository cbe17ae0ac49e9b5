// SPDX-License-Identifier: Apache-2.0
/*
 * zt-cert: issue one workload certificate from a dev CA as PEM files, for the ztunnel tests
 * whose peers are not ours (python3-h2) or are deliberately bad (an expired certificate).
 *   zt-cert --ca-dir DIR --id SPIFFE --cert FILE --key FILE [--lifetime SECONDS]
 * A negative lifetime (down to -299) yields a certificate that has already expired. Any
 * SPIFFE id is accepted, so a wrong trust domain signed by the right CA can be made too.
 * Exit status: 0 ok, 1 failure (with the reason), 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "tls/tls.h"

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"ca-dir", required_argument, NULL, 'd'},	{"id", required_argument, NULL, 'i'},
	    {"cert", required_argument, NULL, 'c'},	{"key", required_argument, NULL, 'k'},
	    {"lifetime", required_argument, NULL, 'l'}, {0}};
	const char *dir = NULL, *id = NULL, *cert_path = NULL, *key_path = NULL;
	long lifetime = 3600;
	struct zm_cert *cert = NULL;
	struct zm_ca *ca = NULL;
	char err[512];
	int c, r;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'i':
			id = optarg;
			break;
		case 'c':
			cert_path = optarg;
			break;
		case 'k':
			key_path = optarg;
			break;
		case 'l':
			lifetime = strtol(optarg, NULL, 10);
			break;
		default:
			goto usage;
		}
	}
	if (!dir || !id || !cert_path || !key_path || optind != argc)
		goto usage;
	r = zm_ca_load(dir, &ca, err, sizeof(err));
	if (!r)
		r = zm_ca_issue(ca, id, lifetime, &cert, err, sizeof(err));
	if (!r)
		r = zm_cert_write_pem(cert, cert_path, key_path, err, sizeof(err));
	zm_cert_put(cert);
	zm_ca_free(ca);
	if (r) {
		fprintf(stderr, "zt-cert: %s\n", err);
		return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: zt-cert --ca-dir DIR --id SPIFFE --cert FILE --key FILE "
			"[--lifetime SECONDS]\n");
	return 2;
}
