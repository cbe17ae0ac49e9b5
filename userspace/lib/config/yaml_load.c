// SPDX-License-Identifier: Apache-2.0
/*
 * The local config file source: reads the reference ztunnel's LOCAL_XDS_PATH YAML (top-level
 * `workloads`, `services`, `policies`) into a struct zm_config snapshot. Input is refused
 * when it breaks the shared reader's limits (zm_yl_load_stream) or holds more than one
 * document. A document that says nothing (an empty file, only comments or `---`, `{}`) is
 * refused: that is what a file caught half-written by an editor or a ConfigMap update looks
 * like, and taking it as "no workloads" would unenroll every pod and let their traffic out in
 * plaintext. A config with no workloads says so: `workloads: []` (zm_config.workloads_empty).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/config.h"
#include "config/yaml_internal.h"

static const struct zm_yl_field zm_yl_top_fields[] = {
    ZM_YL_FUNC("workloads", 0, zm_yl_workloads),
    ZM_YL_FUNC("services", 0, zm_yl_services),
    ZM_YL_FUNC("policies", 0, zm_yl_policies),
};

static void zm_yl_empty_error(struct zm_cfg_errors *errs, unsigned int line)
{
	zm_cfg_error(errs, line, "(root)",
		     "the config is empty (a file caught mid-write looks like this); a config with "
		     "no workloads says so: workloads: []");
}

struct zm_yl_build_ctx {
	struct zm_config *cfg;
	bool seen; /* a document was there */
};

/* Builds the snapshot from the document's root (zm_yl_doc_fn); errors go to yl->errs. */
static int zm_yl_build(struct zm_yl *yl, yaml_node_t *root, void *ctx)
{
	struct zm_yl_build_ctx *b = ctx;
	int ret;

	b->seen = true;
	if (zm_yl_is_null(root) ||
	    (root->type == YAML_MAPPING_NODE &&
	     root->data.mapping.pairs.top == root->data.mapping.pairs.start)) {
		zm_yl_empty_error(yl->errs, zm_yl_is_null(root) ? 0 : zm_yl_line(root));
		return -EINVAL;
	}
	if (root->type != YAML_MAPPING_NODE) {
		zm_cfg_error(yl->errs, zm_yl_line(root), "(root)",
			     "expected a mapping with workloads, services and policies, got %s",
			     zm_yl_kind_name(root));
		return -EINVAL;
	}
	ret = zm_yl_mapping(yl, root, zm_yl_top_fields, ZM_YL_N(zm_yl_top_fields), b->cfg);
	if (yl->fatal && yl->errs->count && ret != -ENOMEM)
		ret = -EINVAL;
	return ret;
}

int zm_config_load_buf(const char *name, const char *buf, size_t len, struct zm_config **out,
		       char *err, size_t errlen)
{
	struct zm_yl_build_ctx b = {0};
	struct zm_cfg_errors errs;
	struct zm_config *cfg;
	struct zm_yl yl = {.errs = &errs};
	int ret;

	*out = NULL;
	name = name ? name : "(config)";
	zm_cfg_errors_init(&errs, name, err, errlen);
	cfg = zm_config_new(name);
	if (!cfg) {
		ret = -ENOMEM;
		goto out;
	}
	yl.cfg = cfg;
	b.cfg = cfg;
	ret = zm_yl_load_stream(&yl, buf, len, ZM_YL_ONE_DOC, zm_yl_build, &b);
	/* No document at all: an empty file, only comments, a bare "---". */
	if (!ret && !errs.count && !b.seen) {
		zm_yl_empty_error(&errs, 0);
		ret = -EINVAL;
	}
	if (!ret && !errs.count)
		ret = zm_config_finalize(cfg, &errs);
	else if (!ret)
		ret = -EINVAL;
out:
	if (ret == -ENOMEM && !errs.count)
		zm_cfg_error(&errs, 0, "(root)", "out of memory");
	if (ret) {
		zm_config_free(cfg);
		zm_cfg_errors_finish(&errs);
		return ret;
	}
	*out = cfg;
	return 0;
}

static int zm_yl_config_buf(const char *name, const char *buf, size_t len, void *out, char *err,
			    size_t errlen)
{
	return zm_config_load_buf(name, buf, len, out, err, errlen);
}

int zm_config_load_file(const char *path, struct zm_config **out, char *err, size_t errlen)
{
	*out = NULL;
	return zm_yl_load_file(path, zm_yl_config_buf, out, err, errlen);
}

static int zm_yl_source_load(struct zm_config_source *src, struct zm_config **out, char *err,
			     size_t errlen)
{
	return zm_config_load_file(src->priv, out, err, errlen);
}

static void zm_yl_source_close(struct zm_config_source *src)
{
	if (!src)
		return;
	free(src->priv);
	free(src);
}

struct zm_config_source *zm_config_source_file(const char *path)
{
	struct zm_config_source *src = calloc(1, sizeof(*src));

	if (!src)
		goto err;
	src->priv = strdup(path);
	if (!src->priv)
		goto err_src;
	src->name = src->priv;
	src->load = zm_yl_source_load;
	src->close = zm_yl_source_close;
	return src;
err_src:
	free(src);
err:
	errno = ENOMEM;
	return NULL;
}
