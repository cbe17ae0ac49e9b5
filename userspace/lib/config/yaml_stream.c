// SPDX-License-Identifier: Apache-2.0
/*
 * The stream side of the shared YAML reader (config/yaml_util.h): reading a file whole,
 * refusing input before libyaml builds a document when it is larger than ZM_CFG_MAX_INPUT,
 * nests deeper than ZM_CFG_MAX_DEPTH or holds more than ZM_CFG_MAX_NODES nodes (a quick
 * event-level pass checks this, because libyaml's document loader has no limits of its own),
 * reporting libyaml's own errors as "(yaml)" at their line, and handing each "---" document to
 * the loader that asked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "config/config.h"
#include "config/yaml_util.h"

static int zm_yl_read_fd(int fd, char **data, size_t *len)
{
	size_t cap = 64 * 1024, used = 0;
	char *buf = NULL, *nb;
	ssize_t n;
	int ret = 0;

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
	if (ret) {
		free(buf);
		return ret;
	}
	*data = buf;
	*len = used;
	return 0;
}

int zm_yl_read_file(const char *path, char **data, size_t *len, struct zm_cfg_errors *errs)
{
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
	} else {
		ret = zm_yl_read_fd(fd, data, len);
		close(fd);
	}
	if (ret)
		zm_cfg_error(errs, 0, "(file)", "cannot read: %s", strerror(-ret));
	return ret;
}

int zm_yl_load_file(const char *path, zm_yl_buf_fn fn, void *out, char *err, size_t errlen)
{
	struct zm_cfg_errors errs;
	char *data = NULL;
	size_t len = 0;
	int ret;

	zm_cfg_errors_init(&errs, path, err, errlen);
	ret = zm_yl_read_file(path, &data, &len, &errs);
	if (ret)
		return ret;
	ret = fn(path, data, len, out, err, errlen);
	free(data);
	return ret;
}

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

/* Event-level pass: syntax, document count (ZM_YL_ONE_DOC), depth and size limits. */
static int zm_yl_prescan(const unsigned char *buf, size_t len, unsigned int flags,
			 struct zm_cfg_errors *errs)
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
			if (++docs > 1 && (flags & ZM_YL_ONE_DOC)) {
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

int zm_yl_load_stream(struct zm_yl *yl, const char *buf, size_t len, unsigned int flags,
		      zm_yl_doc_fn fn, void *ctx)
{
	const unsigned char *in = (const unsigned char *)(buf ? buf : "");
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	int ret, r;

	len = buf ? len : 0;
	if (len > ZM_CFG_MAX_INPUT) {
		zm_cfg_error(yl->errs, 0, "(file)", "%zu bytes is more than the %u byte limit", len,
			     ZM_CFG_MAX_INPUT);
		return -EFBIG;
	}
	ret = zm_yl_prescan(in, len, flags, yl->errs);
	if (ret)
		return ret;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, in, len);
	for (;;) {
		if (!yaml_parser_load(&parser, &doc)) {
			r = zm_yl_syntax_error(&parser, in, len, yl->errs);
			ret = r == -ENOMEM ? r : ret ?: r;
			break;
		}
		root = yaml_document_get_root_node(&doc);
		if (!root) {
			yaml_document_delete(&doc);
			break; /* end of stream */
		}
		yl->doc = &doc;
		yl->path_len = 0;
		yl->path[0] = '\0';
		yl->depth = 0;
		yl->visits = 0;
		r = fn(yl, root, ctx);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
		/* Every enter has its leave, or later documents would see phantom depth. */
		if (yl->depth)
			abort();
#endif
		yaml_document_delete(&doc);
		yl->doc = NULL;
		ret = r == -ENOMEM ? r : ret ?: r;
		if (r == -ENOMEM || yl->fatal)
			break;
	}
	yaml_parser_delete(&parser);
	return ret;
}
