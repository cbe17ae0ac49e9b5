/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to lib/xds: the resource store of the delta state machine (ads.c) and the
 * translation of decoded Istio resources into model objects (translate.c).
 */
#ifndef ZMESH_XDS_INTERNAL_H
#define ZMESH_XDS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "config/model.h"
#include "istio/security/authorization.pb-c.h"
#include "istio/workload/workload.pb-c.h"
#include "xds/xds.h"

/*
 * Translation of one resource into a model object allocated in cfg. line is written into
 * every line field of the object (the build uses it to tell which resource a finalize error
 * is about). On a problem returns -EINVAL with "field.path: problem" in err; -ENOMEM.
 */
int xds_tr_workload(struct zm_config *cfg, const Istio__Workload__Workload *w,
		    struct zm_cfg_workload *out, unsigned int line, char *err, size_t len);
int xds_tr_service(struct zm_config *cfg, const Istio__Workload__Service *s,
		   struct zm_cfg_service *out, unsigned int line, char *err, size_t len);
int xds_tr_policy(struct zm_config *cfg, const Istio__Security__Authorization *a,
		  struct zm_cfg_policy *out, unsigned int line, char *err, size_t len);

/* One held resource: its name, the version the server gave it, the decoded message. */
struct xds_res {
	char *name;
	char *version;
	ProtobufCMessage *msg; /* Istio__Workload__Address or Istio__Security__Authorization */
};

/* Per type: the held resources (sorted by name) and the protocol bookkeeping. */
struct xds_type {
	const char *url;
	const ProtobufCMessageDescriptor *desc;
	struct xds_res *v;
	size_t n;
	char acked_version[128], acked_nonce[128];
	unsigned long acks, nacks, rejected;
	char *last_nack; /* malloc'd error_detail of the last NACK */
	char last_nack_nonce[128];
	bool synced;
};

struct zm_xds {
	pthread_mutex_t lock; /* the dump reads from other threads */
	char node_id[512];
	char ip[64], pod[128], ns[128], node_name[128], cluster_id[128];
	char addr[256];
	bool connected;
	unsigned long streams;
	char last_error[256];
	struct xds_type t[ZM_XDS_N_TYPES];
};

/*
 * Build a finalized snapshot from two stores (the held ones or a candidate). On a finalize
 * failure *bad (calloc'd, n_a + n_b flags, Address store first) marks the resources the
 * errors are about and err holds the messages. Returns 0, -EINVAL or -ENOMEM.
 */
int xds_build_from(const struct xds_res *a, size_t n_a, const struct xds_res *b, size_t n_b,
		   struct zm_config **out, bool **bad, char *err, size_t len);

/* Requests (request.c): the initial subscription of a type, and an ACK/NACK. */
int xds_req_initial(const struct zm_xds *x, const struct xds_type *t, uint8_t **out, size_t *len);
int xds_req_ack(const char *url, const char *nonce, const char *error, uint8_t **out, size_t *len);

/* The resource name istiod gives what this Address holds: the uid, or "<ns>/<hostname>". */
int xds_address_key(const Istio__Workload__Address *a, char *buf, size_t len);

#endif
