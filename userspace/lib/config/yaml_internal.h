/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the config file loader (yaml_load.c, yaml_workload.c, yaml_policy.c): its
 * sections and the one reader only it needs. The YAML reader itself is shared by every loader
 * in lib/ and lives in config/yaml_util.h.
 */
#ifndef ZMESH_CONFIG_YAML_INTERNAL_H
#define ZMESH_CONFIG_YAML_INTERNAL_H

#include "config/yaml_util.h"

/* {servicePort: targetPort}, duplicate service ports refused. */
int zm_yl_port_map(struct zm_yl *yl, yaml_node_t *n, struct zm_cfg_port **out, size_t *n_out);

/* Top-level sections. */
int zm_yl_workloads(struct zm_yl *yl, yaml_node_t *n, void *cfg);
int zm_yl_services(struct zm_yl *yl, yaml_node_t *n, void *cfg);
int zm_yl_policies(struct zm_yl *yl, yaml_node_t *n, void *cfg);

#endif
