// SPDX-License-Identifier: Apache-2.0
/*
 * Where the API server is and how to authenticate to it, the two ways client-go knows: in a
 * pod, KUBERNETES_SERVICE_HOST/_PORT with the service account's token and ca.crt (the kubelet
 * mounts them, and rotates the token: it is re-read when its file changes, and on a 401); out
 * of a cluster, a kubeconfig file's current context (server, CA as a file or inline, bearer
 * token inline or as a file, or a client certificate). Credential plugins (exec,
 * auth-provider) are not run: a kubeconfig that needs one is refused by name.
 */
#include <errno.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errf.h"
#include "config/yaml_util.h"
#include "kube/kube.h"

/* Reads a small text file whole (a token), trailing whitespace cut. 0 or -errno. */
static int zm_kube_read_small(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, size - 1, f);
	if (ferror(f) || (n == size - 1 && fgetc(f) != EOF)) {
		fclose(f);
		return -EFBIG;
	}
	fclose(f);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	return 0;
}

int zm_kube_conn_token_refresh(struct zm_kube_conn *c, bool force, char *err, size_t len)
{
	char tok[sizeof(c->token)];
	struct stat st;
	time_t now = time(NULL);
	int r;

	if (!c->token_file[0])
		return 0;
	if (!force && now == c->token_checked)
		return 0;
	c->token_checked = now;
	if (stat(c->token_file, &st))
		return zm_errf(err, len, -errno, "token %s: %s", c->token_file, strerror(errno));
	if (!force && st.st_mtim.tv_sec == c->token_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == c->token_mtime.tv_nsec)
		return 0;
	r = zm_kube_read_small(c->token_file, tok, sizeof(tok));
	if (r)
		return zm_errf(err, len, r, "token %s: %s", c->token_file, strerror(-r));
	c->token_mtime = st.st_mtim;
	if (!strcmp(tok, c->token))
		return 0;
	memcpy(c->token, tok, sizeof(tok));
	return 1;
}

int zm_kube_conn_incluster(struct zm_kube_conn *c, const char *sa_dir, char *err, size_t len)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"),
		   *port = getenv("KUBERNETES_SERVICE_PORT");
	int r;

	memset(c, 0, sizeof(*c));
	sa_dir = sa_dir ? sa_dir : ZM_KUBE_SA_DIR;
	if (!host || !*host || !port || !*port)
		return zm_errf(err, len, -ENOENT,
			       "not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
			       "are not set (use --kubeconfig outside a cluster)");
	snprintf(c->server, sizeof(c->server),
		 strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
	snprintf(c->ca_file, sizeof(c->ca_file), "%s/ca.crt", sa_dir);
	snprintf(c->token_file, sizeof(c->token_file), "%s/token", sa_dir);
	if (access(c->ca_file, R_OK))
		return zm_errf(err, len, -errno,
			       "%s: %s (is the service account token mounted? "
			       "automountServiceAccountToken or a projected volume)",
			       c->ca_file, strerror(errno));
	r = zm_kube_conn_token_refresh(c, true, err, len);
	return r < 0 ? r : 0;
}

/* Scalar text of key in mapping n, NULL when absent or not a scalar. */
static const char *zm_kc_str(struct zm_yl *yl, yaml_node_t *n, const char *key)
{
	yaml_node_t *v = zm_yl_get(yl, n, key);

	return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

/* The entry named name of list key ("clusters"), its inner mapping member ("cluster"). */
static yaml_node_t *zm_kc_named(struct zm_yl *yl, yaml_node_t *root, const char *list,
				const char *member, const char *name)
{
	yaml_node_t *l = zm_yl_get(yl, root, list);
	yaml_node_item_t *it;

	if (!l || l->type != YAML_SEQUENCE_NODE || !name)
		return NULL;
	for (it = l->data.sequence.items.start; it < l->data.sequence.items.top; it++) {
		yaml_node_t *e = zm_yl_node(yl, *it);
		const char *n = zm_kc_str(yl, e, "name");

		if (n && !strcmp(n, name))
			return zm_yl_get(yl, e, member);
	}
	return NULL;
}

struct zm_kc_ctx {
	struct zm_kube_conn *c;
	char dir[4096];
	char *err;
	size_t len;
	int r;
};

/* A path of the kubeconfig, relative ones taken from its directory. */
static void zm_kc_path(const struct zm_kc_ctx *x, const char *p, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s%s", p[0] == '/' ? "" : x->dir, p[0] == '/' ? "" : "/", p);

	if (n < 0 || (size_t)n >= size)
		out[0] = '\0'; /* too long to be a path we could open */
}

static int zm_kc_base64(const char *in, char **out)
{
	size_t n = strlen(in);
	unsigned char *buf = malloc(n / 4 * 3 + 4);
	int m;

	if (!buf)
		return -ENOMEM;
	m = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n);
	if (m < 0) {
		free(buf);
		return -EINVAL;
	}
	while (m > 0 && n > 0 && in[n - 1] == '=') { /* padding decodes to zero bytes */
		m--;
		n--;
	}
	buf[m] = '\0';
	*out = (char *)buf;
	return 0;
}

static int zm_kc_user(struct zm_kc_ctx *x, struct zm_yl *yl, yaml_node_t *user)
{
	struct zm_kube_conn *c = x->c;
	const char *v;

	if (zm_yl_get(yl, user, "exec") || zm_yl_get(yl, user, "auth-provider"))
		return zm_errf(x->err, x->len, -ENOTSUP,
			       "the kubeconfig's user needs a credential plugin (exec or "
			       "auth-provider), which zmesh does not run: give it a token or "
			       "tokenFile");
	if ((v = zm_kc_str(yl, user, "token")))
		snprintf(c->token, sizeof(c->token), "%s", v);
	if ((v = zm_kc_str(yl, user, "tokenFile")))
		zm_kc_path(x, v, c->token_file, sizeof(c->token_file));
	if ((v = zm_kc_str(yl, user, "client-certificate")))
		zm_kc_path(x, v, c->cert_file, sizeof(c->cert_file));
	if ((v = zm_kc_str(yl, user, "client-key")))
		zm_kc_path(x, v, c->key_file, sizeof(c->key_file));
	if (zm_kc_str(yl, user, "client-certificate-data") ||
	    zm_kc_str(yl, user, "client-key-data"))
		return zm_errf(x->err, x->len, -ENOTSUP,
			       "client-certificate-data is not supported: give the certificate "
			       "and key as files (client-certificate, client-key)");
	return 0;
}

static int zm_kc_doc(struct zm_yl *yl, yaml_node_t *root, void *ctx)
{
	struct zm_kc_ctx *x = ctx;
	struct zm_kube_conn *c = x->c;
	const char *cur = zm_kc_str(yl, root, "current-context"), *v;
	yaml_node_t *context, *cluster, *user;

	context = zm_kc_named(yl, root, "contexts", "context", cur);
	if (!context)
		return x->r =
			   zm_errf(x->err, x->len, -EINVAL,
				   "the kubeconfig has no current-context%s%s%s", cur ? " (" : "",
				   cur ? cur : "", cur ? " is not among its contexts)" : "");
	cluster = zm_kc_named(yl, root, "clusters", "cluster", zm_kc_str(yl, context, "cluster"));
	user = zm_kc_named(yl, root, "users", "user", zm_kc_str(yl, context, "user"));
	if (!cluster || !(v = zm_kc_str(yl, cluster, "server")) || strncmp(v, "https://", 8))
		return x->r = zm_errf(x->err, x->len, -EINVAL,
				      "context %s: its cluster has no https:// server", cur);
	snprintf(c->server, sizeof(c->server), "%s", v);
	while (c->server[0] && c->server[strlen(c->server) - 1] == '/')
		c->server[strlen(c->server) - 1] = '\0';
	if ((v = zm_kc_str(yl, cluster, "certificate-authority")))
		zm_kc_path(x, v, c->ca_file, sizeof(c->ca_file));
	if ((v = zm_kc_str(yl, cluster, "certificate-authority-data")) &&
	    zm_kc_base64(v, &c->ca_pem))
		return x->r = zm_errf(x->err, x->len, -EINVAL,
				      "cluster of context %s: certificate-authority-data is not "
				      "base64",
				      cur);
	v = zm_kc_str(yl, cluster, "insecure-skip-tls-verify");
	c->insecure = v && !strcmp(v, "true");
	if (user)
		x->r = zm_kc_user(x, yl, user);
	return x->r;
}

int zm_kube_conn_kubeconfig(struct zm_kube_conn *c, const char *path, char *err, size_t len)
{
	struct zm_kc_ctx x = {.c = c, .err = err, .len = len};
	struct zm_cfg_errors errs;
	struct zm_yl yl = {.errs = &errs};
	char *data = NULL, *copy;
	size_t n;
	int r;

	memset(c, 0, sizeof(*c));
	zm_cfg_errors_init(&errs, path, err, len);
	yl.cfg = zm_config_new(path);
	copy = strdup(path);
	if (!yl.cfg || !copy) {
		free(copy);
		zm_config_free(yl.cfg);
		return zm_errf(err, len, -ENOMEM, "out of memory");
	}
	snprintf(x.dir, sizeof(x.dir), "%s", dirname(copy));
	free(copy);
	r = zm_yl_read_file(path, &data, &n, &errs);
	if (!r)
		r = zm_yl_load_stream(&yl, data, n, ZM_YL_ONE_DOC, zm_kc_doc, &x);
	if (!r && errs.count)
		r = -EINVAL;
	if (!r)
		r = x.r;
	if (!r && !c->server[0])
		r = zm_errf(err, len, -EINVAL, "%s: empty kubeconfig", path);
	if (!r && c->token_file[0])
		r = zm_kube_conn_token_refresh(c, true, err, len);
	free(data);
	zm_config_free(yl.cfg);
	if (r < 0)
		zm_kube_conn_free(c);
	return r < 0 ? r : 0;
}

void zm_kube_conn_free(struct zm_kube_conn *c)
{
	free(c->ca_pem);
	c->ca_pem = NULL;
	explicit_bzero(c->token, sizeof(c->token));
}
