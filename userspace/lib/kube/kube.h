/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Workload discovery from the Kubernetes API: the third source of the config model
 * (config/model.h) beside the local file and istiod's xDS. Three layers, each usable alone:
 *
 * - the connection (conn.c): in-cluster settings (KUBERNETES_SERVICE_HOST/_PORT and the service
 *   account's token and CA) or a kubeconfig file, with the bearer token re-read when its file
 *   changes (projected tokens rotate under a running process);
 * - the store (store.c, object.c, event.c): what the API said, one compact record per object
 *   of the kinds below, fed by whole lists and by watch events, each object checked on its own
 *   (a malformed object or field is reported by name and left out, the rest is kept);
 * - the reflector (client.c): Kubernetes' list-then-watch protocol over libcurl (HTTP/2 where
 *   the server offers it, every watch multiplexed on one connection): list in pages, watch from
 *   the list's resourceVersion with bookmarks, re-list on 410 Gone, back off on errors, and keep
 *   the last good store while the API server is away;
 * and the translation (build.c, policy.c, l7.c): the store as one struct zm_config snapshot
 * (workloads, services, their endpoints) plus the Istio security resources as one rbac set,
 * and the waypoint's L7 resources as the YAML lib/l7 loads.
 *
 * Nothing here knows ztunnel or the waypoint: userspace/ztunnel/kube_source.c and
 * userspace/waypoint/kube_source.c drive it.
 */
#ifndef ZMESH_KUBE_KUBE_H
#define ZMESH_KUBE_KUBE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/model.h"

/* Where the in-cluster token and CA are mounted (the kubelet's default). */
#define ZM_KUBE_SA_DIR		   "/var/run/secrets/kubernetes.io/serviceaccount"
/* Istio's labels that put workloads into the mesh and behind a waypoint. */
#define ZM_KUBE_LABEL_DATAPLANE	   "istio.io/dataplane-mode"
#define ZM_KUBE_LABEL_WAYPOINT	   "istio.io/use-waypoint"
#define ZM_KUBE_LABEL_WAYPOINT_NS  "istio.io/use-waypoint-namespace"
#define ZM_KUBE_LABEL_SERVICE_NAME "kubernetes.io/service-name"
/* Largest watch event or list page accepted (a bigger one is an error of that stream). */
#define ZM_KUBE_MAX_BODY	   (64u << 20)

/* ---- the connection (conn.c) ---- */

struct zm_kube_conn {
	char server[512];      /* https://host:port, no trailing slash */
	char ca_file[4096];    /* PEM bundle the server's certificate verifies against, or "" */
	char *ca_pem;	       /* or the PEM itself (kubeconfig certificate-authority-data) */
	bool insecure;	       /* kubeconfig insecure-skip-tls-verify: no verification */
	char token_file[4096]; /* re-read when it changes; "" when the token is inline */
	char token[8192];      /* the bearer token in force, "" for none */
	char cert_file[4096], key_file[4096]; /* client certificate (kubeconfig), or "" */
	struct timespec token_mtime;
	time_t token_checked; /* last stat of token_file (at most one a second) */
};

/*
 * In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the token and ca.crt
 * of sa_dir (NULL: ZM_KUBE_SA_DIR). 0, or -errno with a sentence in err.
 */
int zm_kube_conn_incluster(struct zm_kube_conn *c, const char *sa_dir, char *err, size_t len);

/*
 * A kubeconfig file: its current-context's cluster (server, certificate-authority[-data],
 * insecure-skip-tls-verify) and user (token, tokenFile, client-certificate / client-key as
 * files; exec and auth-provider plugins are refused by name). 0 or -errno with err.
 */
int zm_kube_conn_kubeconfig(struct zm_kube_conn *c, const char *path, char *err, size_t len);

/*
 * Re-read the token file when forced or when its mtime changed (checked at most once a
 * second). Returns 1 when the token changed, 0 when not, -errno when it cannot be read (the
 * old token stays).
 */
int zm_kube_conn_token_refresh(struct zm_kube_conn *c, bool force, char *err, size_t len);

void zm_kube_conn_free(struct zm_kube_conn *c);

/* ---- the kinds watched ---- */

enum zm_kube_kind {
	ZM_KUBE_PODS = 0,
	ZM_KUBE_NAMESPACES,
	ZM_KUBE_SERVICES,
	ZM_KUBE_SLICES,
	ZM_KUBE_AUTHZ,
	ZM_KUBE_PEERAUTH,
	/* the waypoint's L7 resources (l7.c), kept as their user-written YAML */
	ZM_KUBE_VIRTSVC,
	ZM_KUBE_DESTRULE,
	ZM_KUBE_HTTPROUTES,
	ZM_KUBE_GRPCROUTES,
	ZM_KUBE_GATEWAYS,
	ZM_KUBE_N_KINDS,
};

/* What ztunnel's model needs (zm_kube_client_opts.kinds). */
#define ZM_KUBE_KINDS_MESH                                                                         \
	(1u << ZM_KUBE_PODS | 1u << ZM_KUBE_NAMESPACES | 1u << ZM_KUBE_SERVICES |                  \
	 1u << ZM_KUBE_SLICES)
#define ZM_KUBE_KINDS_ZTUNNEL (ZM_KUBE_KINDS_MESH | 1u << ZM_KUBE_AUTHZ | 1u << ZM_KUBE_PEERAUTH)
/* What the waypoint reads: the mesh, and the resources lib/l7 loads. */
#define ZM_KUBE_KINDS_L7                                                                           \
	(1u << ZM_KUBE_AUTHZ | 1u << ZM_KUBE_VIRTSVC | 1u << ZM_KUBE_DESTRULE |                    \
	 1u << ZM_KUBE_HTTPROUTES | 1u << ZM_KUBE_GRPCROUTES | 1u << ZM_KUBE_GATEWAYS)
#define ZM_KUBE_KINDS_WAYPOINT (ZM_KUBE_KINDS_MESH | ZM_KUBE_KINDS_L7)

/* Kind name as the API spells it ("Pod"), and the resource ("pods"), for messages. */
const char *zm_kube_kind_name(enum zm_kube_kind k);
const char *zm_kube_kind_resource(enum zm_kube_kind k);
/* The collection's path ("/api/v1/pods"). */
const char *zm_kube_kind_path(enum zm_kube_kind k);

/* ---- the store ---- */

struct zm_kube_store;

/* What the translation needs to know about where it runs. */
struct zm_kube_opts {
	const char *node;	    /* this node: its pods are the ones enrolled */
	const char *trust_domain;   /* NULL: cluster.local */
	const char *cluster_domain; /* service hostnames' suffix; NULL: cluster.local */
	const char *cluster_id;	    /* workload uids' prefix; NULL: Kubernetes */
};

/* NULL with errno on ENOMEM. */
struct zm_kube_store *zm_kube_store_new(void);
void zm_kube_store_free(struct zm_kube_store *st);

/* How a change was taken. */
enum zm_kube_verdict {
	ZM_KUBE_APPLIED = 0, /* the store changed (or the object was dropped, see the log) */
	ZM_KUBE_UNCHANGED,   /* nothing to do (a deletion of an unknown object...) */
	ZM_KUBE_BOOKMARK,    /* a bookmark: rv moved on, no object */
	ZM_KUBE_GONE,	     /* ERROR with 410: re-list */
	ZM_KUBE_ERROR,	     /* ERROR event of another code (message in log) */
	ZM_KUBE_GARBAGE,     /* not a watch event: the stream is broken, re-watch */
};

/*
 * One line of a watch stream ({"type": ..., "object": ...}) of kind k applied to the store.
 * rv (size ZM_KUBE_RV_LEN) gets the event's resourceVersion when it has one. A problem with
 * the object or one of its fields goes to log (one line each, naming the object and the
 * field; size loglen), the object is left out or kept without that field, and the verdict is
 * still APPLIED: the stream is fine. Only a line that is no event at all is GARBAGE.
 */
#define ZM_KUBE_RV_LEN 128
enum zm_kube_verdict zm_kube_store_event(struct zm_kube_store *st, enum zm_kube_kind k,
					 const char *line, size_t len, char *rv, char *log,
					 size_t loglen);

/*
 * A list: begin, one page after another (a List object's text; rv gets its
 * metadata.resourceVersion, cont its metadata.continue), then commit, which replaces every
 * object of the kind at once (objects no longer listed are gone), or abort. Items of another
 * kind are reported in log and skipped. Page: 0, or -EINVAL when the text is no List (log
 * says why; abort then).
 */
#define ZM_KUBE_CONT_LEN 1024
int zm_kube_store_list_begin(struct zm_kube_store *st, enum zm_kube_kind k);
int zm_kube_store_list_page(struct zm_kube_store *st, enum zm_kube_kind k, const char *text,
			    size_t len, char *rv, char *cont, char *log, size_t loglen);
void zm_kube_store_list_commit(struct zm_kube_store *st, enum zm_kube_kind k);
void zm_kube_store_list_abort(struct zm_kube_store *st, enum zm_kube_kind k);

/*
 * One object of kind k (its JSON text, as a GET answers) put in the store, as an ADDED event
 * would; used when the CNI asks about a pod the watch has not delivered yet. 0 or -EINVAL.
 */
int zm_kube_store_put(struct zm_kube_store *st, enum zm_kube_kind k, const char *text, size_t len,
		      char *log, size_t loglen);

/* Objects held of kind k; whether st has a pod / namespace of that key. */
size_t zm_kube_store_count(const struct zm_kube_store *st, enum zm_kube_kind k);
bool zm_kube_store_has(const struct zm_kube_store *st, enum zm_kube_kind k, const char *ns,
		       const char *name);

/* A counter bumped by every change: a caller rebuilds when it moved. */
uint64_t zm_kube_store_serial(const struct zm_kube_store *st);

/*
 * The model: one workload per pod that has not finished (protocol HBONE when it is in the
 * mesh by the istio.io/dataplane-mode label of its namespace or itself, TCP otherwise), one
 * service per Service with a cluster IP, the endpoints from EndpointSlices (an endpoint that
 * is neither ready nor serving is left out; a workload is Healthy while ready), waypoints
 * from istio.io/use-waypoint. Conflicts the API should not allow (an address held by two
 * pods, a cluster IP by two services, a waypoint that names no service) are settled and
 * written to log, one line each. *out is finalized; 0, -ENOMEM, or -EINVAL (a bug: err).
 */
int zm_kube_store_build(const struct zm_kube_store *st, const struct zm_kube_opts *o,
			struct zm_config **out, char *log, size_t loglen, char *err, size_t errlen);

/*
 * Is pod ns/name in the mesh according to the store (namespace and pod labels)? 1 yes, 0 no,
 * -ENOENT when the store does not have the pod, -EAGAIN when it lacks its namespace.
 */
int zm_kube_store_pod_meshed(const struct zm_kube_store *st, const char *ns, const char *name);

/*
 * The AuthorizationPolicy and PeerAuthentication objects as Istio YAML documents, oldest
 * first (Istio's order for equal precedence), for zm_rbac_load_buf. malloc'd text (free it),
 * NULL on ENOMEM; *n gets the number of documents.
 */
char *zm_kube_store_policies(const struct zm_kube_store *st, size_t *n);

/*
 * The waypoint's resources (the kinds of mask, of ZM_KUBE_KINDS_L7) as Istio YAML documents
 * the way users write them (apiVersion, kind, metadata name/namespace/labels, spec), one per
 * object, oldest first (creationTimestamp, then namespace and name: Istio's order for equal
 * precedence). Nothing is checked here: lib/l7's loader is the one judge of the semantics
 * (an AuthorizationPolicy is given as written, not as ztunnel's fail-closed stand-in).
 * Returns a malloc'd array (zm_kube_docs_free) and its length in *n; NULL with *n 0 when
 * there is none or on ENOMEM (errno).
 */
struct zm_kube_doc {
	enum zm_kube_kind kind;
	char *ns, *name, *yaml;
	char label[160]; /* "VirtualService demo/reviews": the loader's error lines start so */
};
struct zm_kube_doc *zm_kube_store_docs(const struct zm_kube_store *st, unsigned int mask,
				       size_t *n);
void zm_kube_docs_free(struct zm_kube_doc *v, size_t n);

/* ---- the reflector (client.c) ---- */

struct zm_kube_client;

struct zm_kube_client_opts {
	struct zm_kube_conn *conn;    /* borrowed */
	struct zm_kube_store *store;  /* borrowed; touched under the client's lock */
	const char *node;	      /* fieldSelector for pods: NULL watches every pod */
	unsigned int page_size;	      /* list page (limit=), 0: 500 */
	unsigned int watch_timeout_s; /* timeoutSeconds of a watch, 0: 300..600 at random */
	unsigned int stall_ms;	      /* a watch silent this long is restarted, 0: 120000 */
	unsigned int backoff_max_ms;  /* 0: 30000 */
	unsigned int kinds;	      /* (1u << enum zm_kube_kind) to watch; 0: all */
	const char *who; /* names the caller's ClusterRole in messages ("zmesh-node") */
};

/* NULL with a sentence in err. */
struct zm_kube_client *zm_kube_client_new(const struct zm_kube_client_opts *o, char *err,
					  size_t len);
void zm_kube_client_free(struct zm_kube_client *c);

/*
 * One turn of the loop: transfers progress for at most timeout_ms, finished requests are
 * handled (a list committed, a watch restarted, a failure backed off), due retries start.
 * Log lines go to stderr prefixed "ztunnel: kube: ". Returns 0, or -ENOMEM.
 */
int zm_kube_client_step(struct zm_kube_client *c, int timeout_ms);

/* Every kind has been listed once (or is forbidden or not installed: it stays empty). */
bool zm_kube_client_synced(const struct zm_kube_client *c);

/* The store's lock, for readers on other threads (the client takes it to write). */
void zm_kube_client_lock(struct zm_kube_client *c);
void zm_kube_client_unlock(struct zm_kube_client *c);

/*
 * GET one object (path: "/api/v1/namespaces/NS/pods/NAME") synchronously, on the calling
 * thread, into the store. 0, -ENOENT (404), -EACCES (401, 403), -EIO with a sentence in err.
 */
int zm_kube_client_fetch(struct zm_kube_client *c, enum zm_kube_kind k, const char *ns,
			 const char *name, int timeout_ms, char *err, size_t len);

/* JSON object text (malloc'd) describing each kind's state, for /config_dump. */
char *zm_kube_client_dump(struct zm_kube_client *c);

/* ---- for the daemons (daemon.c) ---- */

/* An unsigned environment setting, def when unset or empty. */
unsigned int zm_kube_env(const char *name, unsigned int def);
/* page_size, watch_timeout_s, stall_ms, backoff_max_ms from ZMESH_KUBE_* (tests shorten them). */
void zm_kube_client_opts_env(struct zm_kube_client_opts *o);
/*
 * Step c until every kind has been listed once, saying every 5 s what it waits for.
 * 0, or -EINTR (err) when SIGTERM or SIGINT is pending (blocked for a signalfd).
 */
int zm_kube_client_wait(struct zm_kube_client *c, const char *server, char *err, size_t len);
/* Log (scope kube, warn) the lines of notes *said lacks; *said becomes a copy of notes. */
void zm_kube_say_new(const char *notes, char **said);

/*
 * A daemon's connection to the API: conn, store and reflector, and the thread that steps it.
 * zm_kube_src_open connects (kubeconfig FILE, else in-cluster with sa_dir), makes the store and
 * the client for kinds (ZMESH_KUBE_* tunables applied), logs "WHAT from the Kubernetes API at
 * SERVER" and waits for the first list of every kind (zm_kube_client_wait). zm_kube_src_run
 * starts fn on its own thread with every signal blocked (the daemon's signalfd takes them);
 * fn loops until src->stop. zm_kube_src_close stops and joins it and frees everything.
 */
struct zm_kube_src {
	struct zm_kube_conn conn;
	struct zm_kube_store *store;
	struct zm_kube_client *client;
	pthread_t thread;
	bool started;
	atomic_bool stop;
};
int zm_kube_src_open(struct zm_kube_src *src, const char *kubeconfig, const char *sa_dir,
		     unsigned int kinds, const char *who, const char *what, char *err, size_t len);
int zm_kube_src_run(struct zm_kube_src *src, void *(*fn)(void *), char *err, size_t len);
void zm_kube_src_close(struct zm_kube_src *src);

#endif
