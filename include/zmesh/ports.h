/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Well-known ports and the capture mark, shared by the BPF programs and every userspace
 * binary. They are Istio's (README.md "Ports") so dashboards, probes and NetworkPolicies
 * written for Istio ambient carry over unchanged. Host byte order.
 */
#ifndef ZMESH_PORTS_H
#define ZMESH_PORTS_H

#define ZM_PORT_OUTBOUND      15001 /* ztunnel: redirected pod connections */
#define ZM_PORT_INBOUND_PLAIN 15006 /* ztunnel: non-mesh clients to an enrolled pod */
#define ZM_PORT_HBONE	      15008 /* ztunnel and waypoint: mTLS HTTP/2 CONNECT */
#define ZM_PORT_DNS	      15053 /* ztunnel DNS proxy (later) */
#define ZM_PORT_ADMIN	      15000 /* localhost only: /config_dump, /logging, /quitquitquit */
#define ZM_PORT_METRICS	      15020 /* Prometheus /metrics */
#define ZM_PORT_READY	      15021 /* /healthz/ready */
#define ZM_PORT_CA	      15012 /* zmesh-ca: the certificate API (istiod's port) */

/*
 * Packets the tc program hands to a local socket carry this mark; the node namespace routes
 * them locally with one policy rule (fwmark ZM_MARK/ZM_MARK_MASK lookup ZM_ROUTE_TABLE) and
 * one route (local 0.0.0.0/0 and ::/0 dev lo in ZM_ROUTE_TABLE). Without it the forwarding
 * path drops an assigned SYN whose destination is not a local address.
 */
#define ZM_MARK		 0x200
#define ZM_MARK_MASK	 0xf00
#define ZM_ROUTE_TABLE	 100
#define ZM_RULE_PRIORITY 100

#endif
