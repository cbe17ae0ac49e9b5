// SPDX-License-Identifier: Apache-2.0
/*
 * `zmesh-cni install` / `uninstall`: what the zmesh-node DaemonSet's init step does on every
 * node, the way istio-cni installs itself. install copies this binary into the CNI bin
 * directory and chains our entry last into the node's CNI config: the file a runtime would
 * use, the first by name of *.conflist, *.conf, *.json (the primary CNI's). Files are replaced
 * by rename so a runtime never reads half of one; a config that already ends in our entry is
 * not written again. uninstall takes the entry out of every config there and removes the
 * binary; with --unload-datapath also the BPF datapath (zm_dp_unload: our tc filters, sockops
 * links, the policy route, the pins), and with --stay it then waits for a signal (a
 * DaemonSet's pod that shows "this node is clean" by running). Nothing else is touched.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cni/cni.h"
#include "common/errf.h"
#include "datapath/datapath.h"
#include "cni.h"

struct cni_install_opts {
	const char *bin_dir, *conf_dir, *socket, *exclude, *pin_dir, *default_ns;
	int agent_wait, wait_s, watch_s;
	bool uninstall, unload, stay;
};

static bool cni_is_conf_name(const char *n)
{
	size_t l = strlen(n);

	return n[0] != '.' &&
	       ((l > 9 && !strcmp(n + l - 9, ".conflist")) ||
		(l > 5 && !strcmp(n + l - 5, ".conf")) || (l > 5 && !strcmp(n + l - 5, ".json")));
}

/* The first config file by name in dir into out; -ENOENT when there is none. */
static int cni_first_conf(const char *dir, char *out, size_t len)
{
	struct dirent **names;
	int i, n = scandir(dir, &names, NULL, alphasort), r = -ENOENT;

	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		if (r && cni_is_conf_name(names[i]->d_name)) {
			snprintf(out, len, "%s/%s", dir, names[i]->d_name);
			r = 0;
		}
		free(names[i]);
	}
	free(names);
	return r;
}

static char *cni_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;

	if (!f)
		return NULL;
	buf = malloc(ZM_CNI_MAX_INPUT + 1);
	*len = buf ? fread(buf, 1, ZM_CNI_MAX_INPUT, f) : 0;
	if (buf)
		buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* Write text to path through path.tmp and rename, mode 0644 (0755 for exec). */
static int cni_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4200];
	int fd, r = 0;

	snprintf(tmp, sizeof(tmp), "%s.zmesh-tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) || fsync(fd))
		r = -errno;
	close(fd);
	if (!r && rename(tmp, path))
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

static int cni_copy_self(const char *bin_dir)
{
	char dst[4096];
	size_t len;
	char *self = NULL;
	FILE *f = fopen("/proc/self/exe", "re");
	int r;

	if (!f)
		return -errno;
	self = malloc(64u << 20);
	len = self ? fread(self, 1, 64u << 20, f) : 0;
	fclose(f);
	if (!self || !len) {
		free(self);
		return -EIO;
	}
	snprintf(dst, sizeof(dst), "%s/%s", bin_dir, ZM_CNI_TYPE);
	r = cni_write_atomic(dst, self, len, 0755);
	free(self);
	return r;
}

/* Our conflist entry from the options, as JSON text (malloc'd). */
static char *cni_entry(const struct cni_install_opts *o)
{
	json_object *e = json_object_new_object(), *ex = json_object_new_array();
	char *list = strdup(o->exclude ? o->exclude : ""), *tok, *save = NULL, *out;

	json_object_object_add(e, "type", json_object_new_string(ZM_CNI_TYPE));
	json_object_object_add(e, "socketPath", json_object_new_string(o->socket));
	json_object_object_add(e, "agentWaitSeconds", json_object_new_int(o->agent_wait));
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (*tok)
			json_object_array_add(ex, json_object_new_string(tok));
	json_object_object_add(e, "excludeNamespaces", ex);
	if (o->default_ns)
		json_object_object_add(e, "defaultNamespace",
				       json_object_new_string(o->default_ns));
	out = strdup(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(e);
	free(list);
	return out;
}

/* Insert into (or remove from) one file. 0, or -errno with a sentence on stderr. */
static int cni_edit(const struct cni_install_opts *o, const char *path, const char *entry)
{
	char err[512], dst[4096];
	size_t len = 0, l = strlen(path);
	char *in = cni_slurp(path, &len), *out = NULL;
	bool changed = false, conflist = l > 9 && !strcmp(path + l - 9, ".conflist");
	int r;

	if (!in) {
		fprintf(stderr, "zmesh-cni: reading %s: %s\n", path, strerror(errno));
		return -EIO;
	}
	r = o->uninstall ? zm_cni_conflist_remove(in, len, &out, &changed, err, sizeof(err))
			 : zm_cni_conflist_insert(in, len, entry, &out, &changed, err, sizeof(err));
	free(in);
	if (r) {
		fprintf(stderr, "zmesh-cni: %s: %s\n", path, err);
		return r;
	}
	/* A conflist in a .conf file would be read as one plugin: it becomes NAME.conflist. */
	snprintf(dst, sizeof(dst), "%.*s%s", (int)(conflist ? l : l - 5), path,
		 conflist ? "" : ".conflist");
	if (changed && (r = cni_write_atomic(dst, out, strlen(out), 0644)))
		fprintf(stderr, "zmesh-cni: writing %s: %s\n", dst, strerror(-r));
	else if (changed && strcmp(dst, path) && unlink(path))
		r = -errno;
	if (changed && !r)
		printf("zmesh-cni: %s %s\n", o->uninstall ? "removed from" : "chained into", dst);
	else if (!r && !o->uninstall)
		printf("zmesh-cni: %s already chains zmesh-cni\n", path);
	free(out);
	return r;
}

/* --unload-datapath: nothing loaded is fine (an uninstall may run twice). */
static int cni_unload(const struct cni_install_opts *o)
{
	struct zm_dp dp;
	int r;

	if (!o->unload)
		return 0;
	zm_dp_init(&dp, o->pin_dir);
	r = zm_dp_unload(&dp);
	if (r && r != -ENOENT)
		fprintf(stderr, "zmesh-cni: unloading the datapath in %s: %s\n", dp.pin_dir,
			dp.err);
	else
		printf("zmesh-cni: datapath in %s %s\n", dp.pin_dir,
		       r ? "was not loaded" : "unloaded");
	zm_dp_close(&dp);
	return r && r != -ENOENT ? 1 : 0;
}

static int cni_uninstall(const struct cni_install_opts *o)
{
	struct dirent **names;
	char path[4096];
	int i, n = scandir(o->conf_dir, &names, NULL, alphasort), r = 0;

	if (n < 0) {
		fprintf(stderr, "zmesh-cni: %s: %s\n", o->conf_dir, strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", o->conf_dir, names[i]->d_name);
		if (cni_is_conf_name(names[i]->d_name) && cni_edit(o, path, NULL))
			r = 1;
		free(names[i]);
	}
	free(names);
	snprintf(path, sizeof(path), "%s/%s", o->bin_dir, ZM_CNI_TYPE);
	if (unlink(path) && errno != ENOENT) {
		fprintf(stderr, "zmesh-cni: removing %s: %s\n", path, strerror(errno));
		r = 1;
	}
	return r | cni_unload(o);
}

static int cni_install_once(const struct cni_install_opts *o, const char *entry, int wait_s)
{
	char path[4096];
	int r, i;

	for (i = 0; (r = cni_first_conf(o->conf_dir, path, sizeof(path))) == -ENOENT && i < wait_s;
	     i++)
		sleep(1);
	if (r) {
		fprintf(stderr,
			"zmesh-cni: no CNI config in %s (%s): install the primary CNI first; zmesh "
			"chains after it\n",
			o->conf_dir, strerror(-r));
		return 1;
	}
	return cni_edit(o, path, entry) ? 1 : 0;
}

static int cni_parse_opts(int argc, char **argv, struct cni_install_opts *o)
{
	static const struct option lo[] = {{"cni-bin-dir", required_argument, NULL, 'b'},
					   {"cni-conf-dir", required_argument, NULL, 'c'},
					   {"socket", required_argument, NULL, 's'},
					   {"agent-wait", required_argument, NULL, 'a'},
					   {"exclude-namespaces", required_argument, NULL, 'x'},
					   {"wait", required_argument, NULL, 'w'},
					   {"watch", required_argument, NULL, 'W'},
					   {"unload-datapath", no_argument, NULL, 'u'},
					   {"pin-dir", required_argument, NULL, 'p'},
					   {"stay", no_argument, NULL, 'S'},
					   {"default-namespace", required_argument, NULL, 'n'},
					   {0}};
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->bin_dir = optarg;
			break;
		case 'c':
			o->conf_dir = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'x':
			o->exclude = optarg;
			break;
		case 'a':
			o->agent_wait = atoi(optarg);
			break;
		case 'w':
			o->wait_s = atoi(optarg);
			break;
		case 'W':
			o->watch_s = atoi(optarg);
			break;
		case 'u':
			o->unload = true;
			break;
		case 'p':
			o->pin_dir = optarg;
			break;
		case 'S':
			o->stay = true;
			break;
		case 'n':
			o->default_ns = optarg;
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind != argc || o->agent_wait < 0 || o->agent_wait > ZM_CNI_WAIT_MAX ||
	    o->wait_s < 0 || o->watch_s < 0 || o->socket[0] != '/')
		return -EINVAL;
	return 0;
}

/* As a container's PID 1 a signal without a handler is ignored: exit on it ourselves. */
static void cni_on_signal(int sig)
{
	(void)sig;
	_exit(0);
}

int cni_install_main(int argc, char **argv)
{
	struct cni_install_opts o = {.bin_dir = "/opt/cni/bin",
				     .conf_dir = "/etc/cni/net.d",
				     .socket = ZM_CNI_SOCKET_DEFAULT,
				     .exclude = "kube-system",
				     .agent_wait = ZM_CNI_WAIT_DEFAULT,
				     .uninstall = !strcmp(argv[0], "uninstall")};
	char *entry;
	int r;

	signal(SIGTERM, cni_on_signal);
	signal(SIGINT, cni_on_signal);
	if (cni_parse_opts(argc, argv, &o)) {
		fprintf(stderr, "zmesh-cni: bad arguments (zmesh-cni --help)\n");
		return 2;
	}
	if (o.uninstall) {
		r = cni_uninstall(&o);
		while (!r && o.stay)
			pause(); /* until the pod is deleted: SIGTERM ends us */
		return r;
	}
	r = cni_copy_self(o.bin_dir);
	if (r) {
		fprintf(stderr, "zmesh-cni: copying the plugin into %s: %s\n", o.bin_dir,
			strerror(-r));
		return 1;
	}
	entry = cni_entry(&o);
	if (!entry)
		return 1;
	r = cni_install_once(&o, entry, o.wait_s);
	/* --watch: another agent (the primary CNI restarting) may rewrite the file. */
	while (!r && o.watch_s) {
		sleep((unsigned int)o.watch_s);
		r = cni_install_once(&o, entry, 0);
	}
	free(entry);
	return r;
}
