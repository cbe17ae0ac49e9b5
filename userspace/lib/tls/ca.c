// SPDX-License-Identifier: Apache-2.0
/*
 * The dev CA: a self-signed ECDSA P-256 root kept as two PEM files (ca-key.pem 0600,
 * ca-cert.pem), and issuance of SPIFFE workload certificates in the shape Istio's CA gives
 * them: empty subject, the SPIFFE URI as the only SAN (critical, because the subject is
 * empty), server+client auth, a random serial and a notBefore five minutes in the past so
 * small clock skew between nodes does not reject fresh certificates. The trust domain is the
 * root's subject O, as in Istio's self-signed root.
 */
#include "tls/internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Backdating of notBefore for clock skew between nodes. */
#define CA_BACKDATE_S 300

struct zm_ca {
	X509 *x509;
	EVP_PKEY *pkey;
	struct zm_tls_roots *roots;
	/* Serialises signing with the shared CA key (EVP_PKEY caches are not ours to trust). */
	pthread_mutex_t lock;
	char trust_domain[128];
};

/* Add one extension given in openssl.cnf syntax (fixed strings only, never user input). */
static int x509_add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ext)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* A random positive 127-bit serial (RFC 5280: at most 20 octets, positive). */
static int x509_set_random_serial(X509 *x)
{
	unsigned char raw[16];
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn;
	int ok = 0;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return 0;
	raw[0] &= 0x7f;
	raw[0] |= 0x40; /* never a short serial */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn)
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	if (ai)
		ok = X509_set_serialNumber(x, ai);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ok;
}

/* The URI SAN, built as a GENERAL_NAME so the id never goes through a config-string parser. */
static int x509_add_uri_san(X509 *x, const char *uri)
{
	GENERAL_NAMES *names = GENERAL_NAMES_new();
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_IA5STRING *s = ASN1_IA5STRING_new();
	int ok = 0;

	if (!names || !gn || !s || !ASN1_STRING_set(s, uri, (int)strlen(uri)))
		goto out;
	GENERAL_NAME_set0_value(gn, GEN_URI, s);
	s = NULL;
	if (!sk_GENERAL_NAME_push(names, gn))
		goto out;
	gn = NULL;
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, names, 1, X509V3_ADD_DEFAULT) == 1;
out:
	ASN1_IA5STRING_free(s);
	GENERAL_NAME_free(gn);
	GENERAL_NAMES_free(names);
	return ok;
}

/* ---- root ---- */

static int ca_root_build(const char *td, EVP_PKEY *key, X509 **out)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (!x)
		return 0;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) || !x509_set_random_serial(x) ||
	    !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)td, -1, -1,
					0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					(const unsigned char *)"zmesh dev CA", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -CA_BACKDATE_S) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), ZM_CA_LIFETIME) || !X509_set_pubkey(x, key) ||
	    !x509_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
	    !x509_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !x509_add_ext(x, x, NID_subject_key_identifier, "hash") ||
	    !X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return 0;
	}
	*out = x;
	return 1;
}

static int pem_write_x509(BIO *bio, const void *arg)
{
	return PEM_write_bio_X509(bio, (X509 *)arg);
}

static int pem_write_pkey(BIO *bio, const void *arg)
{
	return PEM_write_bio_PrivateKey(bio, (EVP_PKEY *)arg, NULL, NULL, 0, NULL, NULL);
}

static bool ca_trust_domain_valid(const char *td)
{
	char id[ZM_SPIFFE_ID_MAX];

	return strlen(td) < sizeof(((struct zm_ca *)0)->trust_domain) &&
	       !zm_spiffe_id_format(id, sizeof(id), td, "x", "x");
}

/* mkdir dir (mode 0700) when missing; refuses a non-directory. */
static int ca_dir_prepare(const char *dir, char *err, size_t len)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return zm_errf(err, len, -errno, "cannot create directory %s: %s", dir,
			       strerror(errno));
	if (stat(dir, &st))
		return zm_errf(err, len, -errno, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return zm_errf(err, len, -ENOTDIR, "%s is not a directory", dir);
	/* Root passes permission checks, so ask for real writability explicitly. */
	if (access(dir, W_OK))
		return zm_errf(err, len, -errno, "directory %s is not writable: %s", dir,
			       strerror(errno));
	return 0;
}

int zm_ca_init_files(const char *dir, const char *trust_domain, char *err, size_t len)
{
	char kpath[4096], cpath[4096];
	EVP_PKEY *key = NULL;
	X509 *root = NULL;
	int ret;

	trust_domain = trust_domain ?: "cluster.local";
	if (!ca_trust_domain_valid(trust_domain))
		return zm_errf(err, len, -EINVAL,
			       "invalid trust domain \"%s\" (want lower-case letters, digits, "
			       "'.', '-', '_')",
			       trust_domain);
	if (snprintf(kpath, sizeof(kpath), "%s/%s", dir, ZM_CA_KEY_FILE) >= (int)sizeof(kpath) ||
	    snprintf(cpath, sizeof(cpath), "%s/%s", dir, ZM_CA_CERT_FILE) >= (int)sizeof(cpath))
		return zm_errf(err, len, -ENAMETOOLONG, "CA directory path too long");
	ret = ca_dir_prepare(dir, err, len);
	if (ret)
		return ret;
	if (!access(kpath, F_OK))
		return zm_errf(err, len, -EEXIST, "%s already exists; not overwriting a CA key",
			       kpath);
	key = EVP_EC_gen("P-256");
	if (!key)
		return tls_errf_ssl(err, len, -ENOMEM, "generating the CA key");
	if (!ca_root_build(trust_domain, key, &root)) {
		ret = tls_errf_ssl(err, len, -EINVAL, "building the CA certificate");
		goto out;
	}
	ret = tls_pem_write_file(kpath, 0600, pem_write_pkey, key, err, len);
	if (ret)
		goto out;
	ret = tls_pem_write_file(cpath, 0644, pem_write_x509, root, err, len);
	if (ret)
		unlink(kpath);
out:
	X509_free(root);
	EVP_PKEY_free(key);
	return ret;
}

/* ---- load ---- */

static int ca_read_pem(const char *path, bool key, void **out, char *err, size_t len)
{
	BIO *bio = BIO_new_file(path, "r");

	if (!bio)
		return zm_errf(err, len, errno ? -errno : -EIO, "cannot open %s: %s", path,
			       strerror(errno ?: EIO));
	*out = key ? (void *)PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
		   : (void *)PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!*out)
		return tls_errf_ssl(err, len, -EINVAL, "cannot parse %s", path);
	return 0;
}

static int ca_check_root(struct zm_ca *ca, const char *cpath, char *err, size_t len)
{
	X509_NAME *name = X509_get_subject_name(ca->x509);
	int n;

	if (!X509_check_private_key(ca->x509, ca->pkey))
		return tls_errf_ssl(err, len, -EINVAL, "%s does not match the CA key", cpath);
	if (X509_check_ca(ca->x509) == 0)
		return zm_errf(err, len, -EINVAL, "%s is not a CA certificate", cpath);
	n = X509_NAME_get_text_by_NID(name, NID_organizationName, ca->trust_domain,
				      sizeof(ca->trust_domain));
	if (n <= 0 || !ca_trust_domain_valid(ca->trust_domain))
		return zm_errf(err, len, -EINVAL, "%s: subject O is not a valid trust domain",
			       cpath);
	return 0;
}

int zm_ca_load(const char *dir, struct zm_ca **out, char *err, size_t len)
{
	char kpath[4096], cpath[4096];
	struct zm_ca *ca;
	struct stat st;
	int ret;

	if (snprintf(kpath, sizeof(kpath), "%s/%s", dir, ZM_CA_KEY_FILE) >= (int)sizeof(kpath) ||
	    snprintf(cpath, sizeof(cpath), "%s/%s", dir, ZM_CA_CERT_FILE) >= (int)sizeof(cpath))
		return zm_errf(err, len, -ENAMETOOLONG, "CA directory path too long");
	if (stat(kpath, &st))
		return zm_errf(err, len, -errno, "%s: %s (run `zmeshctl ca init --dir %s`?)", kpath,
			       strerror(errno), dir);
	if (st.st_mode & 077)
		return zm_errf(err, len, -EPERM,
			       "%s is accessible by group/others (mode %03o); "
			       "chmod 600 it",
			       kpath, (unsigned int)(st.st_mode & 0777));
	ca = calloc(1, sizeof(*ca));
	if (!ca)
		return zm_errf(err, len, -ENOMEM, "out of memory for the CA");
	pthread_mutex_init(&ca->lock, NULL);
	ret = ca_read_pem(kpath, true, (void **)&ca->pkey, err, len);
	if (ret)
		goto err_free;
	ret = ca_read_pem(cpath, false, (void **)&ca->x509, err, len);
	if (ret)
		goto err_free;
	ret = ca_check_root(ca, cpath, err, len);
	if (ret)
		goto err_free;
	ret = tls_roots_from_certs(&ca->x509, 1, &ca->roots, err, len);
	if (ret)
		goto err_free;
	*out = ca;
	return 0;

err_free:
	zm_ca_free(ca);
	return ret;
}

void zm_ca_free(struct zm_ca *ca)
{
	if (!ca)
		return;
	zm_tls_roots_put(ca->roots);
	X509_free(ca->x509);
	EVP_PKEY_free(ca->pkey);
	pthread_mutex_destroy(&ca->lock);
	free(ca);
}

const char *zm_ca_trust_domain(const struct zm_ca *ca)
{
	return ca->trust_domain;
}

struct zm_tls_roots *zm_ca_roots(struct zm_ca *ca)
{
	return zm_tls_roots_ref(ca->roots);
}

X509 *zm_ca_x509(const struct zm_ca *ca)
{
	return ca->x509;
}

/* ---- issue ---- */

static int ca_leaf_build(struct zm_ca *ca, const char *id, long lifetime_s, EVP_PKEY *key, X509 *x)
{
	int ok;

	if (!X509_set_version(x, X509_VERSION_3) || !x509_set_random_serial(x) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->x509)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -CA_BACKDATE_S) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), lifetime_s) || !X509_set_pubkey(x, key) ||
	    !x509_add_uri_san(x, id) ||
	    !x509_add_ext(x, ca->x509, NID_basic_constraints, "critical,CA:FALSE") ||
	    !x509_add_ext(x, ca->x509, NID_key_usage,
			  "critical,digitalSignature,keyEncipherment") ||
	    !x509_add_ext(x, ca->x509, NID_ext_key_usage, "serverAuth,clientAuth") ||
	    !x509_add_ext(x, ca->x509, NID_authority_key_identifier, "keyid:always"))
		return 0;
	pthread_mutex_lock(&ca->lock);
	ok = X509_sign(x, ca->pkey, EVP_sha256()) > 0;
	pthread_mutex_unlock(&ca->lock);
	return ok;
}

int zm_ca_issue(struct zm_ca *ca, const char *spiffe_id, long lifetime_s, struct zm_cert **out,
		char *err, size_t len)
{
	EVP_PKEY *key;
	time_t now = time(NULL);
	X509 *x;
	int ret;

	if (zm_spiffe_id_parse(spiffe_id, NULL))
		return zm_errf(err, len, -EINVAL,
			       "\"%s\" is not a SPIFFE id (spiffe://TD/ns/NS/sa/SA)",
			       spiffe_id ?: "(null)");
	if (lifetime_s <= -CA_BACKDATE_S)
		return zm_errf(err, len, -EINVAL,
			       "certificate lifetime %ld s ends before it starts", lifetime_s);
	key = EVP_EC_gen("P-256");
	if (!key)
		return tls_errf_ssl(err, len, -ENOMEM, "generating a key for %s", spiffe_id);
	x = X509_new();
	if (!x || !ca_leaf_build(ca, spiffe_id, lifetime_s, key, x)) {
		ret = tls_errf_ssl(err, len, -EINVAL, "issuing a certificate for %s", spiffe_id);
		goto err;
	}
	ret = tls_cert_wrap(x, key, NULL, now, out, err, len);
	if (ret)
		goto err;
	return 0;

err:
	X509_free(x);
	EVP_PKEY_free(key);
	return ret;
}

/* ---- signing for a CA service ---- */

/* notBefore/notAfter of a service-signed leaf: see struct zm_ca_leaf_opts. */
static int ca_leaf_times(struct zm_ca *ca, X509 *x, long lifetime_s)
{
	long back =
	    lifetime_s > 0 && lifetime_s / 10 < CA_BACKDATE_S ? lifetime_s / 10 : CA_BACKDATE_S;

	if (!X509_gmtime_adj(X509_getm_notBefore(x), -back) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), lifetime_s))
		return 0;
	if (ASN1_TIME_compare(X509_get0_notAfter(ca->x509), X509_get0_notAfter(x)) < 0)
		return X509_set1_notAfter(x, X509_get0_notAfter(ca->x509));
	return 1;
}

/* Subject and SANs: empty subject + critical URI SAN, or CN + URI (+ extra) SANs. */
static int ca_leaf_names(struct zm_ca *ca, X509 *x, const struct zm_ca_leaf_opts *o)
{
	char san[ZM_SPIFFE_ID_MAX + 512];

	if (!o->cn)
		return x509_add_uri_san(x, o->spiffe_id);
	if (!X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
					(const unsigned char *)o->cn, -1, -1, 0))
		return 0;
	if (!o->extra_sans || !*o->extra_sans)
		return x509_add_uri_san(x, o->spiffe_id); /* critical: harmless with a subject */
	/* spiffe_id passed zm_spiffe_id_parse(): no ',' or ':' tricks beyond the scheme. */
	if ((size_t)snprintf(san, sizeof(san), "URI:%s,%s", o->spiffe_id, o->extra_sans) >=
	    sizeof(san))
		return 0;
	return x509_add_ext(x, ca->x509, NID_subject_alt_name, san);
}

int zm_ca_sign_pubkey(struct zm_ca *ca, EVP_PKEY *pub, const struct zm_ca_leaf_opts *o, X509 **out,
		      char *err, size_t len)
{
	X509 *x;
	int ok;

	if (!ca || !pub || !o || zm_spiffe_id_parse(o->spiffe_id, NULL))
		return zm_errf(err, len, -EINVAL, "signing needs a CA, a key and a SPIFFE id");
	if (!o->lifetime_s || o->lifetime_s <= -CA_BACKDATE_S)
		return zm_errf(err, len, -EINVAL, "certificate lifetime %ld s", o->lifetime_s);
	x = X509_new();
	ok =
	    x && X509_set_version(x, X509_VERSION_3) && x509_set_random_serial(x) &&
	    X509_set_issuer_name(x, X509_get_subject_name(ca->x509)) &&
	    ca_leaf_times(ca, x, o->lifetime_s) && X509_set_pubkey(x, pub) &&
	    ca_leaf_names(ca, x, o) &&
	    x509_add_ext(x, ca->x509, NID_basic_constraints, "critical,CA:FALSE") &&
	    x509_add_ext(x, ca->x509, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
	    x509_add_ext(x, ca->x509, NID_ext_key_usage, "serverAuth,clientAuth") &&
	    x509_add_ext(x, ca->x509, NID_authority_key_identifier, "keyid:always");
	if (ok) {
		pthread_mutex_lock(&ca->lock);
		ok = X509_sign(x, ca->pkey, EVP_sha256()) > 0;
		pthread_mutex_unlock(&ca->lock);
	}
	if (!ok) {
		X509_free(x);
		return tls_errf_ssl(err, len, -EINVAL, "signing a certificate for %s",
				    o->spiffe_id);
	}
	*out = x;
	return 0;
}

int zm_ca_sign_csr(struct zm_ca *ca, X509_REQ *req, const char *spiffe_id, long lifetime_s,
		   X509 **out, char *err, size_t len)
{
	struct zm_ca_leaf_opts o = {.spiffe_id = spiffe_id, .lifetime_s = lifetime_s};
	EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;

	if (lifetime_s <= 0)
		return zm_errf(err, len, -EINVAL, "certificate lifetime %ld s", lifetime_s);
	if (!pub || X509_REQ_verify(req, pub) != 1)
		return tls_errf_ssl(err, len, -EINVAL, "the CSR's signature does not verify");
	return zm_ca_sign_pubkey(ca, pub, &o, out, err, len);
}
