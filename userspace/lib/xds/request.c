// SPDX-License-Identifier: Apache-2.0
/*
 * The DeltaDiscoveryRequests a ztunnel sends (see xds.h): per type, a first request naming
 * the node (the reference's id and metadata: NAME, NAMESPACE, INSTANCE_IPS, NODE_NAME, and
 * CLUSTER_ID when known) with an empty subscription (a wildcard: everything of the type) and
 * the versions already held; then one ACK or NACK per response, by nonce.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "internal.h"

#define XDS_META_MAX 5

static int xds_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	*out = malloc(n ? n : 1);
	if (!*out)
		return -ENOMEM;
	*len = protobuf_c_message_pack(m, *out);
	return 0;
}

int xds_req_initial(const struct zm_xds *x, const struct xds_type *t, uint8_t **out, size_t *len)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest rq =
	    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node node = ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Google__Protobuf__Struct meta = GOOGLE__PROTOBUF__STRUCT__INIT;
	Google__Protobuf__Struct__FieldsEntry ent[XDS_META_MAX], *pent[XDS_META_MAX];
	Google__Protobuf__Value val[XDS_META_MAX];
	const char *keys[XDS_META_MAX] = {"NAME", "NAMESPACE", "INSTANCE_IPS", "NODE_NAME",
					  "CLUSTER_ID"};
	const char *vals[XDS_META_MAX] = {x->pod, x->ns, x->ip, x->node_name, x->cluster_id};
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry *irv =
											       NULL,
											   **pirv =
											       NULL;
	size_t n = 0;
	int r;

	for (size_t i = 0; i < XDS_META_MAX; i++) {
		if (i == 4 && !vals[i][0])
			continue;
		ent[n] = (Google__Protobuf__Struct__FieldsEntry)
		    GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
		val[n] = (Google__Protobuf__Value)GOOGLE__PROTOBUF__VALUE__INIT;
		val[n].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		val[n].string_value = (char *)vals[i];
		ent[n].key = (char *)keys[i];
		ent[n].value = &val[n];
		pent[n] = &ent[n];
		n++;
	}
	meta.n_fields = n;
	meta.fields = pent;
	node.id = (char *)x->node_id;
	node.metadata = &meta;
	node.user_agent_name = "zmesh";
	rq.node = &node;
	rq.type_url = (char *)t->url;
	if (t->n) {
		irv = calloc(t->n, sizeof(*irv));
		pirv = calloc(t->n, sizeof(*pirv));
		if (!irv || !pirv) {
			free(irv);
			free(pirv);
			return -ENOMEM;
		}
		for (size_t i = 0; i < t->n; i++) {
			irv[i] =
			    (Envoy__Service__Discovery__V3__DeltaDiscoveryRequest__InitialResourceVersionsEntry)
				ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INITIAL_RESOURCE_VERSIONS_ENTRY__INIT;
			irv[i].key = t->v[i].name;
			irv[i].value = t->v[i].version;
			pirv[i] = &irv[i];
		}
		rq.n_initial_resource_versions = t->n;
		rq.initial_resource_versions = pirv;
	}
	r = xds_pack(&rq.base, out, len);
	free(irv);
	free(pirv);
	return r;
}

int xds_req_ack(const char *url, const char *nonce, const char *error, uint8_t **out, size_t *len)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest rq =
	    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;

	rq.type_url = (char *)url;
	rq.response_nonce = (char *)nonce;
	if (error) {
		st.code = 3; /* INVALID_ARGUMENT: the presence of error_detail makes it a NACK */
		st.message = (char *)error;
		rq.error_detail = &st;
	}
	return xds_pack(&rq.base, out, len);
}
