// SPDX-License-Identifier: Apache-2.0
/*
 * The local config file source: reads the reference ztunnel's LOCAL_XDS_PATH YAML (top-level
 * `workloads`, `services`, `policies`) into a struct zm_config snapshot. Input is refused
 * before libyaml builds a document when it is larger than ZM_CFG_MAX_INPUT, nests deeper than
 * ZM_CFG_MAX_DEPTH, holds more than ZM_CFG_MAX_NODES nodes or more than one document: a quick
 * event-level pass checks this, because libyaml's document loader has no limits of its own.
 * An empty file (or one holding only comments or `---`) is an empty, valid config.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config/config.h"
#include "config/yaml_internal.h"

static unsigned int zm_yl_line_of_offset(const unsigned char *buf, size_t len, size_t off)
{
	unsigned int line = 1;
	size_t i;

	for (i = 0; i < off && i < len; i++)
		line += buf[i] == '\n';
	return line;
}

/* Reports libyaml's own error (reader, scanner, parser) as "(yaml)" at its line. */
static int zm_yl_syntax_error(yaml_parser_t *p, const unsigned char *buf, size_t len,
			      struct zm_cfg_errors *errs)
{
	const char *problem = p->problem ? p->problem : "invalid YAML";
	unsigned int line;

	switch (p->error) {
	case YAML_MEMORY_ERROR:
		zm_cfg_error(errs, 0, "(yaml)", "out of memory");
		return -ENOMEM;
	case YAML_READER_ERROR:
		line = zm_yl_line_of_offset(buf, len, p->problem_offset);
		if (p->problem_value >= 0)
			zm_cfg_error(errs, line, "(yaml)", "%s (byte 0x%02x at offset %zu)",
				     problem, (unsigned int)p->problem_value & 0xff,
				     p->problem_offset);
		else
			zm_cfg_error(errs, line, "(yaml)", "%s (at offset %zu)", problem,
				     p->problem_offset);
		return -EINVAL;
	default:
		line = (unsigned int)p->problem_mark.line + 1;
		if (p->context)
			zm_cfg_error(errs, line, "(yaml)", "%s (%s at line %u)", problem,
				     p->context, (unsigned int)p->context_mark.line + 1);
		else
			zm_cfg_error(errs, line, "(yaml)", "%s", problem);
		return -EINVAL;
	}
}

/* Event-level pass: syntax, document count, depth and size limits. */
static int zm_yl_prescan(const unsigned char *buf, size_t len, struct zm_cfg_errors *errs)
{
	unsigned long nodes = 0;
	yaml_parser_t parser;
	int depth = 0, docs = 0, ret = 0;
	bool done = false;
	yaml_event_t ev;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, buf, len);
	while (!done && !ret) {
		if (!yaml_parser_parse(&parser, &ev)) {
			ret = zm_yl_syntax_error(&parser, buf, len, errs);
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				zm_cfg_error(errs, (unsigned int)ev.start_mark.line + 1, "(yaml)",
					     "more than one YAML document");
				ret = -EINVAL;
			}
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > ZM_CFG_MAX_DEPTH) {
				zm_cfg_error(errs, (unsigned int)ev.start_mark.line + 1, "(yaml)",
					     "nested deeper than %d levels", ZM_CFG_MAX_DEPTH);
				ret = -EINVAL;
			}
			/* fallthrough */
		case YAML_SCALAR_EVENT:
		case YAML_ALIAS_EVENT:
			if (++nodes > ZM_CFG_MAX_NODES) {
				zm_cfg_error(errs, (unsigned int)ev.start_mark.line + 1, "(yaml)",
					     "more than %u YAML nodes", ZM_CFG_MAX_NODES);
				ret = -EINVAL;
			}
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	return ret;
}

static const struct zm_yl_field zm_yl_top_fields[] = {
    ZM_YL_FUNC("workloads", 0, zm_yl_workloads),
    ZM_YL_FUNC("services", 0, zm_yl_services),
    ZM_YL_FUNC("policies", 0, zm_yl_policies),
};

/* Builds the snapshot from a parsed document; errors go to errs. */
static int zm_yl_build(struct zm_config *cfg, yaml_document_t *doc, struct zm_cfg_errors *errs)
{
	struct zm_yl yl = {.cfg = cfg, .doc = doc, .errs = errs};
	yaml_node_t *root = yaml_document_get_root_node(doc);
	int ret;

	if (!root || zm_yl_is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE) {
		zm_cfg_error(errs, zm_yl_line(root), "(root)",
			     "expected a mapping with workloads, services and policies, got %s",
			     zm_yl_kind_name(root));
		return -EINVAL;
	}
	ret = zm_yl_mapping(&yl, root, zm_yl_top_fields,
			    sizeof(zm_yl_top_fields) / sizeof(zm_yl_top_fields[0]), cfg);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
	/* Every enter has its leave, or later loads would see phantom depth. */
	if (yl.depth)
		abort();
#endif
	if (yl.fatal && errs->count && ret != -ENOMEM)
		ret = -EINVAL;
	return ret;
}

int zm_config_load_buf(const char *name, const char *buf, size_t len, struct zm_config **out,
		       char *err, size_t errlen)
{
	const unsigned char *in = (const unsigned char *)(buf ? buf : "");
	struct zm_config *cfg = NULL;
	struct zm_cfg_errors errs;
	yaml_parser_t parser;
	yaml_document_t doc;
	int ret;

	*out = NULL;
	name = name ? name : "(config)";
	zm_cfg_errors_init(&errs, name, err, errlen);
	if (!buf)
		len = 0;
	if (len > ZM_CFG_MAX_INPUT) {
		zm_cfg_error(&errs, 0, "(file)", "%zu bytes is more than the %u byte limit", len,
			     ZM_CFG_MAX_INPUT);
		return -EFBIG;
	}
	ret = zm_yl_prescan(in, len, &errs);
	if (ret)
		goto out;
	if (!yaml_parser_initialize(&parser)) {
		ret = -ENOMEM;
		goto out;
	}
	yaml_parser_set_input_string(&parser, in, len);
	if (!yaml_parser_load(&parser, &doc)) {
		ret = zm_yl_syntax_error(&parser, in, len, &errs);
		goto out_parser;
	}
	cfg = zm_config_new(name);
	if (!cfg) {
		ret = -ENOMEM;
		goto out_doc;
	}
	ret = zm_yl_build(cfg, &doc, &errs);
	if (!ret && !errs.count)
		ret = zm_config_finalize(cfg, &errs);
	else if (!ret)
		ret = -EINVAL;
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
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

/* Reads at most ZM_CFG_MAX_INPUT + 1 bytes so an oversized file is refused, not truncated. */
static int zm_yl_read_file(const char *path, char **data, size_t *len)
{
	size_t cap = 64 * 1024, used = 0;
	char *buf = NULL, *nb;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (used == cap || !buf) {
			if (buf)
				cap *= 2;
			if (cap > ZM_CFG_MAX_INPUT + 1)
				cap = ZM_CFG_MAX_INPUT + 1;
			nb = realloc(buf, cap);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
		}
		if (used == cap)
			break; /* ZM_CFG_MAX_INPUT + 1 bytes: too large */
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	if (ret) {
		free(buf);
		return ret;
	}
	*data = buf;
	*len = used;
	return 0;
}

int zm_config_load_file(const char *path, struct zm_config **out, char *err, size_t errlen)
{
	struct zm_cfg_errors errs;
	char *data = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	ret = zm_yl_read_file(path, &data, &len);
	if (ret) {
		zm_cfg_errors_init(&errs, path, err, errlen);
		zm_cfg_error(&errs, 0, "(file)", "cannot read: %s", strerror(-ret));
		return ret;
	}
	ret = zm_config_load_buf(path, data, len, out, err, errlen);
	free(data);
	return ret;
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
