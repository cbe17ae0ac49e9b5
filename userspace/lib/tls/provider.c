// SPDX-License-Identifier: Apache-2.0
/*
 * The dev-CA identity provider: hands out one cached certificate per SPIFFE id and re-issues
 * it once half of its lifetime has passed (Istio's rotation point). The cache is shared by
 * every worker thread behind one mutex; issuing (key generation and signing, ~1 ms) happens
 * outside the lock so a slow issuance never stalls lookups of other identities. Two threads
 * racing to issue the same id both succeed and the later certificate replaces the earlier;
 * callers hold their own references, so nothing is freed under them.
 */
#include "tls/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dev_entry {
	struct dev_entry *next;
	struct zm_cert *cert;
	char id[ZM_SPIFFE_ID_MAX];
};

struct dev_provider {
	struct zm_identity_provider ops; /* first: the interface pointer is the provider */
	struct zm_ca *ca;
	long lifetime_s;
	pthread_mutex_t lock; /* protects entries */
	struct dev_entry *entries;
};

static struct dev_entry *dev_find(struct dev_provider *p, const char *id)
{
	for (struct dev_entry *e = p->entries; e; e = e->next)
		if (!strcmp(e->id, id))
			return e;
	return NULL;
}

/* Cached and not due for rotation: a new reference, else NULL. */
static struct zm_cert *dev_lookup(struct dev_provider *p, const char *id)
{
	struct zm_cert *cert = NULL;
	struct dev_entry *e;

	pthread_mutex_lock(&p->lock);
	e = dev_find(p, id);
	if (e && !zm_cert_needs_rotation(e->cert, time(NULL)))
		cert = zm_cert_ref(e->cert);
	pthread_mutex_unlock(&p->lock);
	return cert;
}

static int dev_store(struct dev_provider *p, const char *id, struct zm_cert *cert)
{
	struct zm_cert *old = NULL;
	struct dev_entry *e;

	pthread_mutex_lock(&p->lock);
	e = dev_find(p, id);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			pthread_mutex_unlock(&p->lock);
			return -ENOMEM;
		}
		snprintf(e->id, sizeof(e->id), "%s", id);
		e->next = p->entries;
		p->entries = e;
	}
	old = e->cert;
	e->cert = zm_cert_ref(cert);
	pthread_mutex_unlock(&p->lock);
	zm_cert_put(old);
	return 0;
}

static int dev_get(struct zm_identity_provider *ip, const char *spiffe_id, struct zm_cert **out,
		   char *err, size_t len)
{
	struct dev_provider *p = (struct dev_provider *)ip;
	struct zm_cert *cert;
	int ret;

	if (zm_spiffe_id_parse(spiffe_id, NULL))
		return zm_errf(err, len, -EINVAL, "\"%s\" is not a SPIFFE id",
			       spiffe_id ?: "(null)");
	cert = dev_lookup(p, spiffe_id);
	if (cert) {
		*out = cert;
		return 0;
	}
	ret = zm_ca_issue(p->ca, spiffe_id, p->lifetime_s, &cert, err, len);
	if (ret)
		return ret;
	/* A failed cache insert only costs a re-issue next time: still hand the cert out. */
	dev_store(p, spiffe_id, cert);
	*out = cert;
	return 0;
}

static struct zm_tls_roots *dev_roots(struct zm_identity_provider *ip)
{
	return zm_ca_roots(((struct dev_provider *)ip)->ca);
}

static void dev_destroy(struct zm_identity_provider *ip)
{
	struct dev_provider *p = (struct dev_provider *)ip;
	struct dev_entry *e, *next;

	for (e = p->entries; e; e = next) {
		next = e->next;
		zm_cert_put(e->cert);
		free(e);
	}
	pthread_mutex_destroy(&p->lock);
	zm_ca_free(p->ca);
	free(p);
}

int zm_dev_provider_each(struct zm_identity_provider *ip,
			 void (*fn)(void *ud, const char *id, const struct zm_cert *cert), void *ud)
{
	struct dev_provider *p = (struct dev_provider *)ip;

	if (!ip || ip->destroy != dev_destroy)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	for (struct dev_entry *e = p->entries; e; e = e->next)
		fn(ud, e->id, e->cert);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static long dev_lifetime(long lifetime_s)
{
	const char *env = getenv(ZM_CERT_LIFETIME_ENV);
	char *end;
	long v;

	if (lifetime_s > 0)
		return lifetime_s;
	if (env && *env) {
		errno = 0;
		v = strtol(env, &end, 10);
		if (!errno && !*end && v > 0)
			return v;
	}
	return ZM_CERT_LIFETIME_DEFAULT;
}

int zm_dev_provider_new(struct zm_ca *ca, long lifetime_s, struct zm_identity_provider **out,
			char *err, size_t len)
{
	struct dev_provider *p;

	if (!ca)
		return zm_errf(err, len, -EINVAL, "dev provider needs a CA");
	p = calloc(1, sizeof(*p));
	if (!p)
		return zm_errf(err, len, -ENOMEM, "out of memory for the identity provider");
	p->ops.get = dev_get;
	p->ops.roots = dev_roots;
	p->ops.destroy = dev_destroy;
	p->ops.each = zm_dev_provider_each;
	p->ca = ca;
	p->lifetime_s = dev_lifetime(lifetime_s);
	pthread_mutex_init(&p->lock, NULL);
	*out = &p->ops;
	return 0;
}
