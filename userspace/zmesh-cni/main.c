// SPDX-License-Identifier: Apache-2.0
/*
 * zmesh-cni: one binary, two roles. With CNI_COMMAND in the environment it is the chained
 * CNI plugin (CNI spec 1.0.0) a container runtime runs for every pod sandbox; otherwise it is
 * the installer that chains itself into a node's CNI config (`install`, `uninstall`). Exit
 * status: the plugin's 0 / 1 (its error object on stdout); the installer's 0 / 1, 2 on usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cni.h"

static void cni_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: zmesh-cni install [--cni-bin-dir DIR] [--cni-conf-dir DIR] [--socket PATH]\n"
	    "                         [--agent-wait SECONDS] [--exclude-namespaces NS,...]\n"
	    "                         [--wait SECONDS] [--watch SECONDS] [--default-namespace NS]\n"
	    "       zmesh-cni uninstall [--cni-bin-dir DIR] [--cni-conf-dir DIR]\n"
	    "                           [--unload-datapath [--pin-dir DIR]] [--stay]\n"
	    "       zmesh-cni --version | --help\n"
	    "       CNI_COMMAND=ADD|DEL|CHECK|VERSION ... zmesh-cni < netconf.json\n"
	    "\n"
	    "The chained CNI plugin of zmesh. A runtime runs it last in the node's conflist:\n"
	    "on ADD it asks the node's ztunnel (socketPath, default /var/run/zmesh/cni.sock)\n"
	    "whether the pod belongs in the mesh and has it enrolled; the previous result goes\n"
	    "out unchanged. While no ztunnel answers, ADD fails (code 11, try again later):\n"
	    "a pod never starts outside the mesh it belongs to.\n"
	    "install copies this binary into --cni-bin-dir (default /opt/cni/bin) and appends\n"
	    "its entry to the first config of --cni-conf-dir (default /etc/cni/net.d), turning\n"
	    "a .conf into a .conflist; a config that has the entry already is left as it is.\n"
	    "--wait: seconds to wait for the primary CNI's config to appear; --watch: keep\n"
	    "running and put the entry back every SECONDS when another agent rewrites the file;\n"
	    "--default-namespace: the namespace of pods a runtime names without one (podman\n"
	    "passes only K8S_POD_NAME); without it such pods pass untouched.\n"
	    "uninstall removes the entry from every config there and the binary;\n"
	    "--unload-datapath also the BPF datapath (filters, links, policy route, pins);\n"
	    "--stay then waits for SIGTERM (a DaemonSet pod showing the node is clean).\n");
}

int main(int argc, char **argv)
{
	if (getenv("CNI_COMMAND"))
		return cni_plugin_main();
	if (argc >= 2 && (!strcmp(argv[1], "install") || !strcmp(argv[1], "uninstall")))
		return cni_install_main(argc - 1, argv + 1);
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("zmesh-cni (zmesh) 0.1.0, CNI spec 0.3.0 to 1.0.0\n");
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--help")) {
		cni_usage(stdout);
		return 0;
	}
	cni_usage(stderr);
	return 2;
}
