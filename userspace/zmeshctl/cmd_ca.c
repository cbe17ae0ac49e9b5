// SPDX-License-Identifier: Apache-2.0
/*
 * zmeshctl ca init: create the dev CA (ca-key.pem 0600 + ca-cert.pem) that ztunnel and the
 * waypoint load with --ca-dir to issue workload certificates. Needs no datapath and no
 * namespace, so it never calls cli_prepare(). The key is never printed; the output names the
 * files, the trust domain, the root's serial and its expiry.
 */
#include "zmeshctl.h"

#include "tls/tls.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void ca_init_human(json_object *o)
{
	printf("dev CA for trust domain %s written to %s\n", cli_json_str(o, "trust_domain"),
	       cli_json_str(o, "dir"));
	printf("  key:  %s (mode 0600)\n  cert: %s (serial %s, expires %s)\n",
	       cli_json_str(o, "key_file"), cli_json_str(o, "cert_file"), cli_json_str(o, "serial"),
	       cli_json_str(o, "not_after"));
}

/* The CA's root described from the files just written (proves they load back). */
static int ca_init_describe(struct cli *c, const char *dir, json_object **out)
{
	char err[512], path[4200], when[32], serial[80];
	struct zm_ca *ca;
	json_object *o;
	BIGNUM *bn;
	char *hex;
	struct tm tm;
	time_t t;
	int ret;

	ret = zm_ca_load(dir, &ca, err, sizeof(err));
	if (ret)
		return cli_fail(c, "CA written but does not load back: %s", err);
	o = json_object_new_object();
	json_object_object_add(o, "dir", json_object_new_string(dir));
	json_object_object_add(o, "trust_domain", json_object_new_string(zm_ca_trust_domain(ca)));
	snprintf(path, sizeof(path), "%s/%s", dir, ZM_CA_KEY_FILE);
	json_object_object_add(o, "key_file", json_object_new_string(path));
	snprintf(path, sizeof(path), "%s/%s", dir, ZM_CA_CERT_FILE);
	json_object_object_add(o, "cert_file", json_object_new_string(path));
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(zm_ca_x509(ca)), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	snprintf(serial, sizeof(serial), "%s", hex ?: "");
	OPENSSL_free(hex);
	BN_free(bn);
	json_object_object_add(o, "serial", json_object_new_string(serial));
	ASN1_TIME_to_tm(X509_get0_notAfter(zm_ca_x509(ca)), &tm);
	t = timegm(&tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	json_object_object_add(o, "not_after", json_object_new_string(when));
	zm_ca_free(ca);
	*out = o;
	return CLI_OK;
}

int cmd_ca_init(struct cli *c, int argc, char **argv)
{
	enum { O_DIR = CLI_OPT_CMD_FIRST, O_TD };
	static const struct option own[] = {
	    {"dir", required_argument, NULL, O_DIR},
	    {"trust-domain", required_argument, NULL, O_TD},
	    {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *td = "cluster.local";
	json_object *o = NULL;
	char err[512];
	int opt, ret;

	while ((opt = cli_getopt(c, argc, argv, own)) != -1) {
		switch (opt) {
		case O_DIR:
			dir = optarg;
			break;
		case O_TD:
			td = optarg;
			break;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_fail(c, "unexpected argument \"%s\"", argv[optind]);
	if (!dir || !*dir)
		return cli_usage_fail(c, "--dir is required");
	ret = zm_ca_init_files(dir, td, err, sizeof(err));
	if (ret)
		return cli_fail(c, "ca init: %s", err);
	ret = ca_init_describe(c, dir, &o);
	if (ret)
		return ret;
	return cli_emit(c, o, ca_init_human);
}
