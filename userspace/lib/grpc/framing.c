// SPDX-License-Identifier: Apache-2.0
/*
 * gRPC's length-prefixed message framing and status names, the one copy used by the gRPC
 * client (client.c) and by zmesh-ca's server.
 */
#include <errno.h>

#include "grpc/grpc.h"

const char *zm_grpc_status_name(int code)
{
	switch (code) {
	case ZM_GRPC_OK:
		return "OK";
	case ZM_GRPC_CANCELLED:
		return "CANCELLED";
	case ZM_GRPC_INVALID_ARGUMENT:
		return "INVALID_ARGUMENT";
	case ZM_GRPC_DEADLINE_EXCEEDED:
		return "DEADLINE_EXCEEDED";
	case ZM_GRPC_PERMISSION_DENIED:
		return "PERMISSION_DENIED";
	case ZM_GRPC_RESOURCE_EXHAUSTED:
		return "RESOURCE_EXHAUSTED";
	case ZM_GRPC_UNIMPLEMENTED:
		return "UNIMPLEMENTED";
	case ZM_GRPC_INTERNAL:
		return "INTERNAL";
	case ZM_GRPC_UNAVAILABLE:
		return "UNAVAILABLE";
	case ZM_GRPC_UNAUTHENTICATED:
		return "UNAUTHENTICATED";
	default:
		return "UNKNOWN";
	}
}

void zm_grpc_hdr_put(uint8_t *hdr, uint32_t msg_len)
{
	hdr[0] = 0;
	hdr[1] = (uint8_t)(msg_len >> 24);
	hdr[2] = (uint8_t)(msg_len >> 16);
	hdr[3] = (uint8_t)(msg_len >> 8);
	hdr[4] = (uint8_t)msg_len;
}

int zm_grpc_hdr_get(const uint8_t *hdr, uint32_t *msg_len)
{
	if (hdr[0] > 1)
		return -EINVAL;
	*msg_len = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
	return hdr[0];
}
