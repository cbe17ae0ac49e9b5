// SPDX-License-Identifier: Apache-2.0
/*
 * The xDS client's state as JSON for ztunnel's /config_dump: where it connects, whether a
 * stream is up, the node id, and per resource type what was last ACKed (system version and
 * nonce), how many resources are held, ACK and NACK counts and the last NACK's text.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *zm_xds_dump(struct zm_xds *x)
{
	json_object *o = json_object_new_object(), *types = json_object_new_object();
	char *out;

	pthread_mutex_lock(&x->lock);
	json_object_object_add(o, "address", json_object_new_string(x->addr));
	json_object_object_add(o, "connected", json_object_new_boolean(x->connected));
	json_object_object_add(o, "streams", json_object_new_int64((int64_t)x->streams));
	json_object_object_add(o, "nodeId", json_object_new_string(x->node_id));
	json_object_object_add(o, "lastError", json_object_new_string(x->last_error));
	for (int t = 0; t < ZM_XDS_N_TYPES; t++) {
		const struct xds_type *ty = &x->t[t];
		json_object *j = json_object_new_object();

		json_object_object_add(j, "resources", json_object_new_int64((int64_t)ty->n));
		json_object_object_add(j, "lastAckedVersion",
				       json_object_new_string(ty->acked_version));
		json_object_object_add(j, "lastAckedNonce",
				       json_object_new_string(ty->acked_nonce));
		json_object_object_add(j, "acks", json_object_new_int64((int64_t)ty->acks));
		json_object_object_add(j, "nacks", json_object_new_int64((int64_t)ty->nacks));
		json_object_object_add(j, "rejectedResources",
				       json_object_new_int64((int64_t)ty->rejected));
		json_object_object_add(
		    j, "lastNack", ty->last_nack ? json_object_new_string(ty->last_nack) : NULL);
		json_object_object_add(j, "lastNackNonce",
				       json_object_new_string(ty->last_nack_nonce));
		json_object_object_add(types, ty->url, j);
	}
	pthread_mutex_unlock(&x->lock);
	json_object_object_add(o, "types", types);
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}
