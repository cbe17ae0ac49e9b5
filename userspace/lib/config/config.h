/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Config sources. A source produces complete struct zm_config snapshots (config/model.h); the
 * first one is the reference ztunnel's local config file (LOCAL_XDS_PATH, YAML, camelCase,
 * userspace/lib/config/README.md), an xDS client comes later behind the same struct
 * zm_config_source.
 *
 * Errors are reported as text, one per line, each "FILE:LINE: field.path: problem", e.g.
 *   cfg.yaml:12: workloads[1].protocol: unknown value "HTTP" (want TCP or HBONE)
 * YAML syntax errors use the path "(yaml)" and problems with the document as a whole "(root)".
 */
#ifndef ZMESH_CONFIG_CONFIG_H
#define ZMESH_CONFIG_CONFIG_H

#include <stddef.h>

#include "config/model.h"

/* Inputs larger than this are refused before parsing. */
#define ZM_CFG_MAX_INPUT (16u << 20)
/* Deepest collection nesting accepted (the schema itself needs 7). */
#define ZM_CFG_MAX_DEPTH 32
/*
 * Most YAML nodes (scalars, collections, aliases) in one document. A cluster of 50,000
 * workloads and 10,000 services (make bench's scale scenario) is about 1.2 million.
 */
#define ZM_CFG_MAX_NODES 2000000u

/*
 * Parse and validate a local config held in memory. name is used in messages only. On success
 * *out holds a finalized snapshot (free with zm_config_free()) and 0 is returned. On failure
 * *out is NULL, err holds the messages (truncated to errlen, always terminated when errlen > 0)
 * and -EINVAL (bad input), -EFBIG (too large) or -ENOMEM is returned.
 */
int zm_config_load_buf(const char *name, const char *buf, size_t len, struct zm_config **out,
		       char *err, size_t errlen);

/* Same for a file; -errno from open/read is returned (and described in err) as well. */
int zm_config_load_file(const char *path, struct zm_config **out, char *err, size_t errlen);

/*
 * A config source: something that can (re)produce a snapshot. load() returns 0 with a new
 * snapshot in *out, or -errno with messages in err; the caller owns the snapshot and swaps it
 * in whole. close() releases the source itself.
 */
struct zm_config_source {
	const char *name;
	int (*load)(struct zm_config_source *src, struct zm_config **out, char *err, size_t errlen);
	void (*close)(struct zm_config_source *src);
	void *priv;
};

/* A source reading the YAML file at path on every load(). NULL with errno on failure. */
struct zm_config_source *zm_config_source_file(const char *path);

#endif
