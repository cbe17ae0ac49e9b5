/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS for connections to a control plane (istiod's xDS and CA on 15012, zmesh-ca): unlike
 * HBONE, the server is named either by a SPIFFE id (zmesh-ca) or by a DNS name (istiod's
 * serving certificate carries DNS SANs such as istiod.istio-system.svc), a client certificate
 * is optional (istiod authenticates ztunnels by their Kubernetes token), and TLS 1.2 is
 * accepted as istiod does; the chain must still verify against the mesh roots.
 */
#ifndef ZMESH_TLS_CPCLIENT_H
#define ZMESH_TLS_CPCLIENT_H

#include <openssl/ssl.h>

#include "tls/tls.h"

/*
 * A blocking-mode client SSL on fd in connect state: ALPN "h2", chain verified against roots,
 * then server_name checked: a URI SAN equal to it when it starts with "spiffe://", otherwise
 * a DNS SAN matching it (also sent as SNI). cert (may be NULL) is presented when asked.
 * Returns 0 with *out or -errno with the reason in err.
 */
int zm_tls_cp_ssl_new(struct zm_tls_roots *roots, int fd, struct zm_cert *cert,
		      const char *server_name, SSL **out, char *err, size_t len);

#endif
