/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The waypoint's L7 model: Istio VirtualService, DestinationRule and AuthorizationPolicy
 * resources read from the YAML users write (several documents per file), checked against the
 * mesh's services (config/model.h), and the pure decisions made from them: which HTTP route a
 * request takes, which weighted destination, which subset endpoints, whether L7 policy allows
 * it. No I/O besides reading the files, no clock; randomness is passed in.
 *
 * A struct l7_config is an immutable snapshot, like struct zm_config: built whole by
 * l7_config_load(), shared read-only between threads, freed whole. Errors are one per line,
 * "FILE:LINE: field.path: problem" (the config library's collector), and a load that reports
 * any error yields no snapshot, so a broken update keeps the previous one in service.
 */
#ifndef ZMESH_L7_L7_H
#define ZMESH_L7_L7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/model.h"

#define L7_DEFAULT_NAMESPACE "default"
#define L7_DOMAIN_SUFFIX     "svc.cluster.local"
#define L7_DENY_BODY	     "RBAC: access denied"
#define L7_MAX_ENDPOINTS     256

enum l7_str_kind {
	L7_STR_NONE = 0, /* not set: matches anything */
	L7_STR_EXACT,
	L7_STR_PREFIX,
	L7_STR_REGEX, /* PCRE2, anchored at both ends like Envoy's RE2 full match */
	/*
	 * Envoy's path_separated_prefix (Gateway API PathPrefix): the path is the prefix, or
	 * starts with it followed by "/".
	 */
	L7_STR_PATH_PREFIX,
};

struct l7_strm {
	enum l7_str_kind kind;
	const char *value;
	void *re; /* pcre2_code * for L7_STR_REGEX */
};

/*
 * A header or query parameter condition, as Istio hands it to Envoy: a value match, or a
 * presence match (an empty {} or the regex "*", which Istio turns into present_match).
 */
struct l7_kv_match {
	const char *name; /* lower-cased for headers; ":method", ":path"... are pseudo-headers */
	struct l7_strm m; /* L7_STR_NONE: present, with any value */
};

struct l7_http_match {
	const char *name;
	struct l7_strm uri, method, authority, scheme;
	struct l7_kv_match *headers;
	size_t n_headers;
	/*
	 * A request matching any of these is excluded. Istio inverts each with Envoy's
	 * treat_missing_header_as_empty (a missing header is matched as ""), except a presence
	 * match, which stays a plain inverted presence.
	 */
	struct l7_kv_match *without_headers;
	size_t n_without_headers;
	struct l7_kv_match *query_params;
	size_t n_query_params;
	unsigned int port; /* 0: any */
	bool ignore_uri_case;
	/*
	 * sourceLabels / sourceNamespace / gateways: Istio decides them when it builds the proxy's
	 * routes, against the proxy itself (for a waypoint: the waypoint's own labels and
	 * namespace, and the gateway "mesh"); l7_match_request compares them with l7_request's
	 * proxy_* fields.
	 */
	struct l7_kv *source_labels;
	size_t n_source_labels;
	const char *source_namespace;
	const char **gateways;
	size_t n_gateways;
	unsigned int line;
};

struct l7_kv {
	const char *name;
	const char *value;
};

/*
 * Header operations of one level (route or destination) as Istio translates them for
 * Envoy: set (overwrite) and add (append) sorted by name, then remove; ":authority" or
 * "host" in set or add is the authority rewrite instead (set wins over add), and other
 * pseudo-headers are dropped. Envoy applies a level's removes first, then its set and add.
 */
struct l7_header_ops {
	struct l7_kv *set, *add;
	size_t n_set, n_add;
	const char **remove;
	size_t n_remove;
	const char *authority; /* NULL: none */
};

struct l7_dest {
	const char *host;   /* fully qualified: name.ns.svc.cluster.local */
	const char *subset; /* "" when none */
	unsigned int port;  /* 0: the port the request came in on */
	unsigned int weight;
	const struct zm_cfg_service *service;	/* resolved at load */
	struct l7_header_ops req_ops, resp_ops; /* the destination's own headers */
	unsigned int line;
};

enum l7_retry_on {
	L7_RETRY_5XX = 1u << 0,
	L7_RETRY_GATEWAY_ERROR = 1u << 1, /* 502, 503, 504 */
	L7_RETRY_CONNECT_FAILURE = 1u << 2,
	L7_RETRY_RESET = 1u << 3,
	L7_RETRY_REFUSED_STREAM = 1u << 4,
	L7_RETRY_RETRIABLE_4XX = 1u << 5, /* 409 */
	L7_RETRY_RETRIABLE_CODES = 1u << 6,
	L7_RETRY_RESET_BEFORE_REQUEST = 1u << 7,
	L7_RETRY_RETRIABLE_HEADERS = 1u << 8,
	L7_RETRY_ENVOY_RATELIMITED = 1u << 9,
	L7_RETRY_HTTP3_POST_CONNECT = 1u << 10,
	/* gRPC, on the grpc-status of a trailers-only answer */
	L7_RETRY_CANCELLED = 1u << 16,		/* 1 */
	L7_RETRY_DEADLINE_EXCEEDED = 1u << 17,	/* 4 */
	L7_RETRY_RESOURCE_EXHAUSTED = 1u << 18, /* 8 */
	L7_RETRY_INTERNAL = 1u << 19,		/* 13 */
	L7_RETRY_UNAVAILABLE = 1u << 20,	/* 14 */
};

/* Istio's default retryOn:
 * connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes */
#define L7_RETRY_DEFAULT                                                                           \
	(L7_RETRY_CONNECT_FAILURE | L7_RETRY_REFUSED_STREAM | L7_RETRY_UNAVAILABLE |               \
	 L7_RETRY_CANCELLED | L7_RETRY_RETRIABLE_CODES)
#define L7_RETRY_MAX_CODES 16

/* Why an exchange ended without a response, for retryOn. */
enum l7_reset {
	L7_RESET_CONNECT,	 /* no connection to the endpoint */
	L7_RESET_REFUSED,	 /* the endpoint refused the stream */
	L7_RESET_BEFORE_REQUEST, /* reset before the request was sent */
	L7_RESET_AFTER_REQUEST,	 /* reset, or closed, before the response ended */
	L7_RESET_TIMEOUT,	 /* perTryTimeout */
};

struct l7_retry {
	unsigned int attempts; /* retries after the first try; 0 with set: none */
	uint32_t per_try_timeout_ms;
	uint32_t retry_on; /* enum l7_retry_on bits */
	unsigned int codes[L7_RETRY_MAX_CODES];
	size_t n_codes;
};

enum l7_port_rule {
	L7_PORT_KEEP = 0,	 /* no redirect port: the request's Host as it is */
	L7_PORT_FIXED,		 /* redirect.port */
	L7_PORT_FROM_REQUEST,	 /* derivePort FROM_REQUEST_PORT: the service port */
	L7_PORT_PROTOCOL_DEFAULT /* derivePort FROM_PROTOCOL_DEFAULT: no port */
};

struct l7_cors {
	bool set;
	struct l7_strm *origins; /* allowOrigins (or the deprecated allowOrigin, exact) */
	size_t n_origins;
	const char *methods, *headers, *expose; /* joined with "," as Envoy gets them; NULL none */
	const char *max_age;			/* seconds, NULL none */
	bool credentials;
	bool forward_unmatched; /* unmatchedPreflights FORWARD (Istio's default) */
};

struct l7_mirror {
	struct l7_dest dest;
	double pct;
};

struct l7_http_route {
	const char *name;
	struct l7_http_match *matches; /* none: matches every request */
	size_t n_matches;
	struct l7_dest *dests;
	size_t n_dests;
	unsigned int total_weight;
	uint32_t timeout_ms; /* 0: none */
	bool retries_set;    /* retries given; else Istio's default policy */
	struct l7_retry retries;
	struct {
		uint32_t delay_ms;
		double delay_pct;	   /* 0..100 */
		unsigned int abort_status; /* 0: none */
		int abort_grpc;		   /* grpcStatus code, -1: none */
		double abort_pct;
	} fault;
	struct l7_mirror *mirrors; /* mirror + mirrorPercentage, then mirrors[] */
	size_t n_mirrors;
	struct l7_header_ops req_ops, resp_ops;
	struct {
		const char *uri; /* replaces the matched prefix (or the whole path) */
		void *re;	 /* uriRegexRewrite: pcre2_code *, its substitution below */
		const char *re_sub;
		const char *authority;
	} rewrite;
	struct {
		bool set;
		const char *uri, *prefix, *authority, *scheme;
		enum l7_port_rule port_rule;
		unsigned int port;
		unsigned int code; /* 301 (default), 302, 303, 307, 308 */
	} redirect;
	struct {
		unsigned int status; /* 0: none */
		const char *body;
	} direct;
	struct l7_cors cors;
	unsigned int line;
};

struct l7_vs {
	const char *name, *namespace;
	const char **hosts; /* qualified; may start with "*." */
	size_t n_hosts;
	bool not_mesh; /* spec.gateways without "mesh": not applied by waypoints */
	/*
	 * Routes of Gateway API HTTPRoutes and GRPCRoutes (l7_config.gw_vs), Istio's "Gateway
	 * semantics": per Service they attach to, or per waypoint Gateway (gw_parent "ns/name",
	 * hosts from the route's hostnames, "*" when none).
	 */
	bool gateway_api;
	const char *gw_parent;
	struct l7_http_route *http;
	size_t n_http;
	struct l7_dest *tcp; /* first tcp route's destinations */
	size_t n_tcp;
	unsigned int tcp_weight;
	const char *file;
	unsigned int line;
};

enum l7_lb {
	L7_LB_DEFAULT = 0, /* LEAST_REQUEST, Istio's default */
	L7_LB_ROUND_ROBIN,
	L7_LB_LEAST_REQUEST,
	L7_LB_RANDOM,
	L7_LB_PASSTHROUGH,
};

struct l7_traffic_policy {
	enum l7_lb lb;
	struct {
		unsigned int max_connections;	    /* tcp.maxConnections, 0: unlimited */
		unsigned int http1_max_pending;	    /* http.http1MaxPendingRequests */
		unsigned int http2_max_requests;    /* http.http2MaxRequests */
		unsigned int max_requests_per_conn; /* http.maxRequestsPerConnection */
		uint32_t connect_timeout_ms;	    /* tcp.connectTimeout */
		uint32_t idle_timeout_ms;	    /* http.idleTimeout */
	} pool;
	struct {
		bool set;
		unsigned int consecutive_5xx; /* consecutive5xxErrors (default 5 when set) */
		uint32_t interval_ms;	      /* default 10 s */
		uint32_t base_ejection_ms;    /* default 30 s */
		unsigned int max_ejection_pct;
	} outlier;
};

struct l7_subset {
	const char *name;
	struct l7_kv *labels;
	size_t n_labels;
	bool has_policy;
	struct l7_traffic_policy policy;
	unsigned int line;
};

struct l7_dr {
	const char *name, *namespace;
	const char *host; /* qualified */
	struct l7_traffic_policy policy;
	struct l7_subset *subsets;
	size_t n_subsets;
	const char *file;
	unsigned int line;
};

enum l7_authz_action {
	L7_AUTHZ_ALLOW = 0,
	L7_AUTHZ_DENY,
	L7_AUTHZ_AUDIT,
};

struct l7_str_list {
	struct l7_strm *v; /* Istio's string forms: exact, "prefix*", "*suffix", "*" */
	size_t n;
};

struct l7_authz_source {
	struct l7_str_list principals, not_principals, namespaces, not_namespaces;
};

struct l7_authz_op {
	struct l7_str_list paths, not_paths, methods, not_methods, hosts, not_hosts;
	struct l7_str_list ports, not_ports;
};

struct l7_authz_cond {
	const char *key; /* "request.headers[name]", "source.principal", ... */
	struct l7_str_list values, not_values;
};

struct l7_authz_rule {
	struct l7_authz_source *from;
	size_t n_from;
	struct l7_authz_op *to;
	size_t n_to;
	struct l7_authz_cond *when;
	size_t n_when;
};

struct l7_authz {
	const char *name, *namespace;
	enum l7_authz_action action;
	const char **target_services; /* targetRefs kind Service (qualified); none: namespace */
	size_t n_target_services;
	const char **target_gateways; /* targetRefs kind Gateway: "ns/name" of a waypoint */
	size_t n_target_gateways;
	bool has_selector; /* spec.selector: a workload policy, enforced by ztunnel, not us */
	struct l7_authz_rule *rules;
	size_t n_rules;
	const char *file;
	unsigned int line;
};

/* A parentRef of a Gateway API route. */
struct l7_gw_parent {
	bool service; /* a Service (GAMMA), else a Gateway (a waypoint) */
	const char *name, *namespace;
	unsigned int port; /* 0: every port */
};

/* An HTTPRoute or GRPCRoute as read (its rules become routes of l7_config.gw_vs). */
struct l7_gw_route {
	const char *kind, *name, *namespace;
	struct l7_gw_parent *parents;
	size_t n_parents;
	const char **hostnames; /* qualified */
	size_t n_hostnames;
	struct l7_http_route *rules; /* one per rule, with all its matches */
	size_t n_rules;
	const char *file;
	unsigned int line;
};

struct l7_arena;

struct l7_config {
	struct l7_vs *vs;
	size_t n_vs;
	struct l7_gw_route *gw;
	size_t n_gw;
	struct l7_vs *gw_vs; /* the Gateway API routes by parent, sorted as istiod sorts them */
	size_t n_gw_vs;
	struct l7_dr *dr;
	size_t n_dr;
	struct l7_authz *authz;
	size_t n_authz;
	/* private */
	struct l7_arena *arena;
};

/*
 * Load and check every file (each may hold several "---" documents of the kinds above; other
 * kinds, unknown fields, bad values, regexes PCRE2 refuses, destinations naming services the
 * mesh does not have or subsets no DestinationRule defines are errors). mesh may be NULL (no
 * host checks; destinations stay unresolved). Returns 0 with *out, or -EINVAL / -ENOMEM /
 * -errno of reading with the messages in err.
 */
int l7_config_load(const char *const *files, size_t n_files, const struct zm_config *mesh,
		   struct l7_config **out, char *err, size_t errlen);
/* Same from memory: one named buffer. */
int l7_config_load_buf(const char *name, const char *buf, size_t len, const struct zm_config *mesh,
		       struct l7_config **out, char *err, size_t errlen);
/*
 * The files and named in-memory documents (the waypoint's objects from the Kubernetes API)
 * together (load_docs.c). A document with errors of its own ("NAME:LINE: field: problem", or a
 * destination, subset or service it names that is missing) is replaced by its fallback (the
 * last version of it that loaded) when it has one, else left out, and the rest is loaded
 * again; an error in a file fails the load as l7_config_load does. Returns 0 with *out, and
 * in notes the refused documents' error lines and what became of each ("" when none); or
 * -errno with the last round's errors in notes.
 */
struct l7_doc {
	const char *name;     /* "VirtualService demo/reviews": no ':' */
	const char *text;     /* YAML (JSON is YAML) */
	const char *fallback; /* NULL: none */
	bool bad;	      /* out: left out */
	bool fell_back;	      /* out: fallback loaded instead of text */
};
int l7_config_load_docs(const char *const *files, size_t n_files, struct l7_doc *docs,
			size_t n_docs, const struct zm_config *mesh, struct l7_config **out,
			char *notes, size_t len);
void l7_config_free(struct l7_config *cfg);

/* "reviews" in namespace ns -> "reviews.ns.svc.cluster.local"; names with a dot unchanged. */
int l7_host_qualify(const char *host, const char *ns, char *buf, size_t len);

/* ---- requests ---- */

struct l7_header {
	const char *name; /* lower case */
	const char *value;
};

struct l7_request {
	const char *method;
	const char *path; /* request target as sent: /p/a/t/h?query */
	const char *authority;
	const char *scheme; /* "http" */
	unsigned int port;  /* the service port the client addressed */
	const struct l7_header *headers;
	size_t n_headers;
	const char *source_principal; /* without spiffe://, "" when unknown */
	const char *source_namespace;
	/* the proxy deciding: sourceLabels, sourceNamespace and gateways compare with these */
	const struct zm_cfg_label *proxy_labels;
	size_t n_proxy_labels;
	const char *proxy_namespace;
	const char *proxy_gateway; /* the waypoint's Gateway name (its service account) */
};

/* First value of header name (lower case) or NULL; ":method" etc. are the request's. */
const char *l7_request_header(const struct l7_request *req, const char *name);
/*
 * Every value of header name joined with "," (Envoy's view of a repeated header) into buf;
 * NULL when absent.
 */
const char *l7_request_header_all(const struct l7_request *req, const char *name, char *buf,
				  size_t len);

/* The VirtualService whose hosts cover hostname (exact before wildcard); NULL when none. */
const struct l7_vs *l7_vs_find(const struct l7_config *cfg, const char *hostname);
/*
 * The routes for a request to service hostname through the waypoint gw_ns/gw_name: Gateway
 * API routes first (attached to the Service, then to the waypoint's Gateway), as Istio
 * selects routes with Gateway semantics before VirtualServices; else the VirtualService.
 */
const struct l7_vs *l7_routes_for(const struct l7_config *cfg, const char *hostname,
				  const char *gw_ns, const char *gw_name);
/* The DestinationRule of hostname, or NULL. */
const struct l7_dr *l7_dr_find(const struct l7_config *cfg, const char *hostname);
const struct l7_subset *l7_dr_subset(const struct l7_dr *dr, const char *name);

bool l7_strm_match(const struct l7_strm *m, const char *s);
bool l7_match_request(const struct l7_http_match *m, const struct l7_request *req);
/*
 * The first route of vs matching req, or NULL (the caller answers 404); *match (may be NULL)
 * is the route's match that did, NULL for a route without matches.
 */
const struct l7_http_route *l7_route_match(const struct l7_vs *vs, const struct l7_request *req,
					   const struct l7_http_match **match);
/* Weighted choice among dests (weights 0 => equal share); rnd uniform. NULL when n is 0. */
const struct l7_dest *l7_dest_pick(const struct l7_dest *dests, size_t n, uint32_t rnd);

/*
 * Percent decision for faults/mirrors: true for pct% of rnd values (pct in 0..100, with
 * sub-percent resolution).
 */
bool l7_percent_hit(double pct, uint32_t rnd);

/*
 * The path sent upstream (Envoy's prefix_rewrite and regex_rewrite): rewrite.uri replaces
 * the prefix the request matched by (the whole path for an exact or regex match, "/" for a
 * route without match); uriRegexRewrite substitutes every match of its pattern in the path.
 * The query string is kept. Writes into buf; 0 or -ENOSPC.
 */
int l7_rewrite_path(const struct l7_http_route *r, const struct l7_http_match *m,
		    const struct l7_request *req, char *buf, size_t len);

/*
 * The Location of the route's redirect, as Envoy builds it: scheme (redirect's or the
 * request's), host (redirect's authority, or the request's Host with its port dropped when a
 * port is given or the scheme changes away from that port's default), the port (dropped when
 * it is the scheme's default, as Istio does), and the path (uri, or prefixRewrite of the
 * matched prefix, else the request's), the request's query kept unless uri has its own.
 */
int l7_redirect_location(const struct l7_http_route *r, const struct l7_http_match *m,
			 const struct l7_request *req, char *buf, size_t len);

/* Does the CORS policy allow origin (exact, prefix, regex; an exact "*" allows all)? */
bool l7_cors_origin_allowed(const struct l7_cors *c, const char *origin);

/*
 * Does retryOn cover a response (status, and the grpc-status of a trailers-only answer, -1
 * none), or an exchange that ended without one?
 */
bool l7_retry_on_response(const struct l7_retry *rt, unsigned int status, int grpc_status);
bool l7_retry_on_reset(const struct l7_retry *rt, enum l7_reset why);
/* The policy in force for route r (NULL: no VirtualService): its own, or Istio's default. */
const struct l7_retry *l7_route_retry(const struct l7_http_route *r);

/*
 * L7 authorization of req to the service svc_host (qualified) in svc_ns: any matching DENY
 * refuses; with ALLOW policies in scope one must match; else allowed. Policies in scope: those
 * whose targetRefs name the service or this waypoint's Gateway (req->proxy_namespace and
 * proxy_gateway), and those without targetRefs or selector of the service's namespace (or
 * the root namespace, istio-system). Returns true to allow; *policy names the deciding
 * policy (or NULL).
 */
bool l7_authz_allows(const struct l7_config *cfg, const char *svc_host, const char *svc_ns,
		     const struct l7_request *req, const struct l7_authz **policy);

/* An endpoint candidate of a destination. */
struct l7_endpoint {
	const struct zm_cfg_workload *wl;
	unsigned int target_port;
};

/*
 * Endpoints of svc serving service port sport whose labels include every label of subset
 * (NULL: all), healthy, with an address. Returns the count (at most max).
 */
size_t l7_endpoints(const struct zm_config *mesh, const struct zm_cfg_service *svc,
		    unsigned int sport, const struct l7_subset *subset, struct l7_endpoint *out,
		    size_t max);

/* The traffic policy for a destination: the subset's when it has one, else the rule's. */
const struct l7_traffic_policy *l7_policy_for(const struct l7_dr *dr, const struct l7_subset *ss);

#endif
