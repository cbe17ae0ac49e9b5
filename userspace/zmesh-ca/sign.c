// SPDX-License-Identifier: Apache-2.0
/*
 * What zmesh-ca signs and for whom. A request names one identity: the CSR's single URI SAN
 * and/or the ImpersonatedIdentity metadata (they must agree). The caller is the node whose
 * certificate authenticated the TLS connection; as in Istio's node authorizer, a caller with
 * the trusted node account (spiffe://TD/ns/istio-system/sa/ztunnel) may obtain an identity
 * only when the local config places a workload with that identity on the caller's node (its
 * certificate's CN) or on no node at all (a Kubernetes pod goes where the scheduler puts it
 * and that node's CNI plugin announces it: without a node API to ask, every node may hold
 * it); any caller may renew its own identity. CSRs are checked before anything
 * is signed: PEM and signature valid, key ECDSA P-256/P-384 or RSA 2048-4096, at most one
 * SAN which must be a SPIFFE URI in our trust domain. The CSR contributes only its public key:
 * subject, extensions and lifetime of the certificate are the CA's (empty subject, the id as
 * the only, critical, SAN), like the dev CA's certificates (lib/tls/ca.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca.h"
#include "obs/log.h"
#include "common/errf.h"
#include "config/config.h"

/* ---- loading ---- */

int zca_load(struct zca *z, const char *dir, const char *config, char *err, size_t len)
{
	int r;

	r = zm_ca_load(dir, &z->ca, err, len);
	if (r)
		return r;
	z->ca_cert = zm_ca_x509(z->ca);
	snprintf(z->td, sizeof(z->td), "%s", zm_ca_trust_domain(z->ca));
	if (!z->node_account[0])
		zm_spiffe_id_format(z->node_account, sizeof(z->node_account), z->td, ZCA_SERVER_NS,
				    ZCA_NODE_SA);
	z->config_path = config;
	pthread_mutex_init(&z->cfg_lock, NULL);
	return 0;
}

void zca_fini(struct zca *z)
{
	SSL_CTX_free(z->ssl_ctx);
	zm_ca_free(z->ca);
	if (z->cfg)
		zm_config_free(z->cfg);
}

/* ---- building certificates ---- */

/* A leaf signed by the CA (lib/tls does the X.509 work); NULL on failure. */
static X509 *zca_leaf(struct zca *z, EVP_PKEY *pubkey, const char *uri, const char *cn,
		      long lifetime_s, const char *extra_sans)
{
	struct zm_ca_leaf_opts o = {
	    .spiffe_id = uri, .lifetime_s = lifetime_s, .cn = cn, .extra_sans = extra_sans};
	char err[256];
	X509 *x = NULL;

	if (zm_ca_sign_pubkey(z->ca, pubkey, &o, &x, err, sizeof(err)))
		obs_log(OBS_ERROR, "ca", "%s", err);
	return x;
}

int zca_server_cert(struct zca *z, X509 **cert, EVP_PKEY **key, char *err, size_t len)
{
	char id[ZM_SPIFFE_ID_MAX];

	zm_spiffe_id_format(id, sizeof(id), z->td, ZCA_SERVER_NS, ZCA_SERVER_SA);
	*key = EVP_EC_gen("P-256");
	*cert = *key ? zca_leaf(z, *key, id, "zmesh-ca", 10L * 365 * 86400,
				"DNS:istiod.istio-system.svc,DNS:zmesh-ca,DNS:localhost,"
				"IP:127.0.0.1,IP:::1")
		     : NULL;
	if (!*cert) {
		EVP_PKEY_free(*key);
		ERR_clear_error();
		return zm_errf(err, len, -ENOMEM, "cannot build the CA's serving certificate");
	}
	return 0;
}

static char *pem_of(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (bio && PEM_write_bio_X509(bio, x)) {
		n = BIO_get_mem_data(bio, &data);
		out = n > 0 ? strndup(data, (size_t)n) : NULL;
	}
	BIO_free(bio);
	return out;
}

/* ---- issue-node ---- */

static bool node_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '.' || *s == '_'))
			return false;
	return true;
}

/* Write via a temp file + rename so a reader never sees half a key; mode set at creation. */
static int write_pem(const char *dir, const char *name, mode_t mode, int (*fn)(BIO *b, void *arg),
		     void *arg, char *err, size_t len)
{
	char path[4096], tmp[4200];
	BIO *bio;
	int fd, ok;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return zm_errf(err, len, -errno, "cannot create %s: %s", tmp, strerror(errno));
	fchmod(fd, mode); /* umask must not widen or narrow it */
	f = fdopen(fd, "w");
	bio = f ? BIO_new_fp(f, BIO_NOCLOSE) : NULL;
	ok = bio && fn(bio, arg) && BIO_flush(bio) == 1;
	BIO_free(bio);
	ok = ok && fflush(f) == 0 && fsync(fd) == 0;
	if (f)
		fclose(f);
	else
		close(fd);
	ERR_clear_error();
	if (!ok || rename(tmp, path)) {
		unlink(tmp);
		return zm_errf(err, len, -EIO, "cannot write %s", path);
	}
	return 0;
}

static int bio_x509(BIO *b, void *arg)
{
	return PEM_write_bio_X509(b, arg);
}

static int bio_key(BIO *b, void *arg)
{
	return PEM_write_bio_PrivateKey(b, arg, NULL, NULL, 0, NULL, NULL);
}

int zca_issue_node(struct zca *z, const char *dir, const char *name, long lifetime_s, char *err,
		   size_t len)
{
	EVP_PKEY *key;
	X509 *x;
	int r;

	if (!node_name_valid(name))
		return zm_errf(err, len, -EINVAL,
			       "invalid node name \"%s\" (1-63 of a-z 0-9 . - _)", name);
	if (lifetime_s <= -ZCA_BACKDATE_S)
		return zm_errf(err, len, -EINVAL, "lifetime %ld s ends before it starts",
			       lifetime_s);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return zm_errf(err, len, -errno, "cannot create %s: %s", dir, strerror(errno));
	key = EVP_EC_gen("P-256");
	x = key ? zca_leaf(z, key, z->node_account, name, lifetime_s, NULL) : NULL;
	if (!x) {
		EVP_PKEY_free(key);
		ERR_clear_error();
		return zm_errf(err, len, -ENOMEM, "cannot build the node certificate");
	}
	r = write_pem(dir, "node-key.pem", 0600, bio_key, key, err, len);
	if (!r)
		r = write_pem(dir, "node-cert.pem", 0644, bio_x509, x, err, len);
	if (!r)
		r = write_pem(dir, ZM_CA_CERT_FILE, 0644, bio_x509, z->ca_cert, err, len);
	X509_free(x);
	EVP_PKEY_free(key);
	return r;
}

/* ---- checking a CSR ---- */

/* Key types we sign for; why names the type when refused. */
static int csr_key_check(EVP_PKEY *pk, char *why, size_t wlen)
{
	char group[64] = "";
	int bits = EVP_PKEY_get_bits(pk);

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL);
		if (!strcmp(group, "prime256v1") || !strcmp(group, "secp384r1"))
			return 0;
		return zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			       "CSR key is EC %s (want P-256 or P-384)", group[0] ? group : "?");
	case EVP_PKEY_RSA:
		if (bits >= 2048 && bits <= 4096)
			return 0;
		return zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			       "CSR key is RSA-%d (want 2048..4096 bits)", bits);
	default:
		return zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			       "CSR key type %s is not accepted (want ECDSA P-256)",
			       OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
	}
}

/* The CSR's SANs: none (uri "") or exactly one SPIFFE URI. */
static int csr_san(X509_REQ *req, char *uri, size_t ulen, char *why, size_t wlen)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *names = NULL;
	const GENERAL_NAME *gn;
	int n, r = 0, crit = -1, idx = -1;

	uri[0] = '\0';
	if (exts)
		names = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, &idx);
	if (!names && crit == -2) {
		r = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT, "CSR has several SAN extensions");
		goto out;
	}
	n = names ? sk_GENERAL_NAME_num(names) : 0;
	if (n > 1) {
		r = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			    "CSR has %d SANs (want one SPIFFE URI)", n);
		goto out;
	}
	if (n == 1) {
		gn = sk_GENERAL_NAME_value(names, 0);
		if (gn->type != GEN_URI) {
			r = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
				    "CSR SAN is not a URI (want one SPIFFE URI)");
			goto out;
		}
		const ASN1_IA5STRING *s = gn->d.uniformResourceIdentifier;
		int sl = ASN1_STRING_length(s);

		if (sl <= 0 || (size_t)sl >= ulen ||
		    memchr(ASN1_STRING_get0_data(s), 0, (size_t)sl)) {
			r = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT, "CSR URI SAN is too long");
			goto out;
		}
		memcpy(uri, ASN1_STRING_get0_data(s), (size_t)sl);
		uri[sl] = '\0';
		if (zm_spiffe_id_parse(uri, NULL))
			r = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
				    "CSR URI SAN is not a SPIFFE id (spiffe://TD/ns/NS/sa/SA)");
	}
out:
	GENERAL_NAMES_free(names);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return r;
}

/* Parse and check a PEM CSR; *out gets it (caller frees). Returns a gRPC status. */
static int csr_check(const char *pem, size_t len, X509_REQ **out, char *uri, size_t ulen, char *why,
		     size_t wlen)
{
	X509_REQ *req = NULL;
	EVP_PKEY *pk;
	BIO *bio;
	int r;

	if (!len || len > ZM_CA_MAX_REQUEST)
		return zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT, "request has no CSR");
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio)
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (!req)
		return zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			       "CSR is not a PEM certificate request");
	pk = X509_REQ_get0_pubkey(req);
	if (!pk || X509_REQ_verify(req, pk) != 1) {
		ERR_clear_error();
		r = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT, "CSR signature does not verify");
		goto err;
	}
	r = csr_key_check(pk, why, wlen);
	if (!r)
		r = csr_san(req, uri, ulen, why, wlen);
	if (r)
		goto err;
	*out = req;
	return ZM_GRPC_OK;
err:
	X509_REQ_free(req);
	return r;
}

/* ---- authorization ---- */

/* Reload the config when its file changed; keep the old one when the new one is bad. */
static void zca_config_refresh(struct zca *z)
{
	struct zm_config *cfg;
	char err[1024];
	struct stat st;

	if (!z->config_path)
		return; /* the Kubernetes API keeps z->cfg (kube.c) */
	if (stat(z->config_path, &st)) {
		if (!z->cfg)
			obs_log(OBS_WARN, "config", "config %s: %s", z->config_path,
				strerror(errno));
		return;
	}
	if (z->cfg && st.st_mtim.tv_sec == z->cfg_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == z->cfg_st.st_mtim.tv_nsec && st.st_size == z->cfg_st.st_size &&
	    st.st_ino == z->cfg_st.st_ino)
		return;
	if (zm_config_load_file(z->config_path, &cfg, err, sizeof(err))) {
		obs_log(OBS_WARN, "config", "config %s not reloaded: %s", z->config_path, err);
		z->cfg_st = st; /* do not re-log until it changes again */
		return;
	}
	if (z->cfg)
		zm_config_free(z->cfg);
	z->cfg = cfg;
	z->cfg_st = st;
	obs_log(OBS_INFO, "config", "config %s loaded: %zu workloads", z->config_path,
		cfg->n_workloads);
}

/* True when the config has a workload with identity id on node, or on no node. */
static bool zca_workload_on_node(struct zca *z, const char *node, const char *id)
{
	char wid[ZM_SPIFFE_ID_MAX];
	bool found = false;

	pthread_mutex_lock(&z->cfg_lock);
	zca_config_refresh(z);
	for (size_t i = 0; z->cfg && i < z->cfg->n_workloads && !found; i++) {
		const struct zm_cfg_workload *wl = &z->cfg->workloads[i];

		found = wl->node && (!wl->node[0] || !strcmp(wl->node, node)) &&
			!zm_cfg_workload_identity(wl, wid, sizeof(wid)) && !strcmp(wid, id);
	}
	pthread_mutex_unlock(&z->cfg_lock);
	return found;
}

static int zca_authorize(struct zca *z, const struct zca_caller *c, const char *id, char *why,
			 size_t wlen)
{
	struct zm_spiffe_id sid;

	if (zm_spiffe_id_parse(id, &sid))
		return zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			       "requested identity is not a SPIFFE id");
	if (strcmp(sid.trust_domain, z->td))
		return zm_errf(why, wlen, ZM_GRPC_PERMISSION_DENIED,
			       "requested identity is outside trust domain %s", z->td);
	if (!strcmp(id, c->id))
		return ZM_GRPC_OK; /* renewing its own identity */
	if (strcmp(c->id, z->node_account))
		return zm_errf(why, wlen, ZM_GRPC_PERMISSION_DENIED,
			       "caller %s is not a node account (%s) and may only renew itself",
			       c->id, z->node_account);
	if (!c->node[0])
		return zm_errf(why, wlen, ZM_GRPC_UNAUTHENTICATED,
			       "node certificate names no node (subject CN)");
	if (!zca_workload_on_node(z, c->node, id))
		return zm_errf(why, wlen, ZM_GRPC_PERMISSION_DENIED,
			       "no workload with identity %s on node %s", id, c->node);
	return ZM_GRPC_OK;
}

static int zca_sign(struct zca *z, X509_REQ *req, const char *id, long ttl, char *chain[2],
		    char *why, size_t wlen)
{
	X509 *x = NULL;
	BIGNUM *bn;
	char *hex;

	if (zm_ca_sign_csr(z->ca, req, id, ttl, &x, why, wlen)) {
		ERR_clear_error();
		return ZM_GRPC_INTERNAL;
	}
	chain[0] = pem_of(x);
	chain[1] = pem_of(z->ca_cert);
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hex = bn ? BN_bn2hex(bn) : NULL;
	zm_errf(why, wlen, ZM_GRPC_OK, "serial %s, valid %ld s", hex ?: "?", ttl);
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	if (!chain[0] || !chain[1]) {
		free(chain[0]);
		free(chain[1]);
		chain[0] = chain[1] = NULL;
		return zm_errf(why, wlen, ZM_GRPC_INTERNAL, "out of memory");
	}
	return ZM_GRPC_OK;
}

int zca_handle(struct zca *z, const struct zca_caller *c, const struct zm_capb_request *rq,
	       char *chain[2], char *why, size_t wlen)
{
	char uri[ZM_SPIFFE_ID_MAX] = "", imp[ZM_SPIFFE_ID_MAX] = "";
	const char *id;
	X509_REQ *req = NULL;
	long ttl = (long)rq->validity_s;
	int st;

	chain[0] = chain[1] = NULL;
	if (rq->impersonated_len >= sizeof(imp)) {
		st = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT, "ImpersonatedIdentity too long");
		goto log;
	}
	if (rq->impersonated)
		memcpy(imp, rq->impersonated, rq->impersonated_len);
	st = csr_check(rq->csr, rq->csr_len, &req, uri, sizeof(uri), why, wlen);
	if (st)
		goto log;
	id = imp[0] ? imp : uri;
	if (!id[0])
		st = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			     "no identity requested (CSR has no URI SAN, no ImpersonatedIdentity)");
	else if (imp[0] && uri[0] && strcmp(imp, uri))
		st = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			     "CSR SAN %s differs from ImpersonatedIdentity %s", uri, imp);
	else if (rq->validity_s < 0)
		st = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT, "negative validity_duration");
	else if (rq->validity_s > z->max_ttl)
		st = zm_errf(why, wlen, ZM_GRPC_INVALID_ARGUMENT,
			     "requested validity %lld s exceeds the maximum %ld s",
			     (long long)rq->validity_s, z->max_ttl);
	if (st)
		goto log;
	st = zca_authorize(z, c, id, why, wlen);
	if (!st)
		st = zca_sign(z, req, id, ttl ?: z->default_ttl, chain, why, wlen);
	if (id != uri)
		snprintf(uri, sizeof(uri), "%s", id);
log:
	X509_REQ_free(req);
	atomic_fetch_add(st ? &z->refused : &z->issued, 1);
	obs_log(st ? OBS_WARN : OBS_INFO, "ca", "%s from %s caller=%s node=%s identity=%s: %s%s%s",
		st ? "refused" : "issued", c->addr, c->id, c->node[0] ? c->node : "-",
		uri[0] ? uri : (imp[0] ? imp : "-"), st ? zm_grpc_status_name(st) : "",
		st ? " " : "", why);
	return st;
}
