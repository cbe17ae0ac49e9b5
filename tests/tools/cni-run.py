#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# A container runtime's CNI calls, for the tests: runs a conflist's plugins the way the CNI
# spec (1.0.0, "Attachment operations") says a runtime must, with the CNI_* environment and
# the network config on stdin, so zmesh-cni is driven exactly as containerd or podman drive it.
#
#   cni-run.py ADD|DEL|CHECK CONFLIST CONTAINER_ID NETNS IFNAME CNI_ARGS CNI_PATH CACHE_DIR
#
# ADD runs the plugins in order, each getting the previous one's result as prevResult, and
# keeps the final result in CACHE_DIR/CONTAINER_ID.json (each plugin's own result in
# CACHE_DIR/CONTAINER_ID.PLUGIN.json) and prints it; DEL runs them in reverse with the cached
# result; CHECK in order with it. A plugin that fails stops the chain: its error object goes
# to stdout and the exit status is 1 (on ADD the caller runs DEL to clean up, like a runtime).
import json
import os
import subprocess
import sys


def plugin_conf(conflist, plugin, prev):
    conf = dict(plugin)
    conf["cniVersion"] = conflist["cniVersion"]
    conf["name"] = conflist["name"]
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def run_plugin(conf, cmd, env, cni_path):
    exe = None
    for d in cni_path.split(":"):
        if os.access(os.path.join(d, conf["type"]), os.X_OK):
            exe = os.path.join(d, conf["type"])
            break
    if exe is None:
        print(json.dumps({"code": 5, "msg": "plugin not found", "details": conf["type"]}))
        sys.exit(1)
    e = dict(env, CNI_COMMAND=cmd)
    p = subprocess.run([exe], input=json.dumps(conf).encode(), env=e, capture_output=True,
                       timeout=120)
    sys.stderr.write(p.stderr.decode(errors="replace"))
    if p.returncode != 0:
        sys.stdout.write(p.stdout.decode(errors="replace"))
        sys.exit(1)
    out = p.stdout.decode().strip()
    return json.loads(out) if out else None


def main():
    cmd, conflist_path, cid, netns, ifname, args, cni_path, cache = sys.argv[1:9]
    with open(conflist_path) as f:
        conflist = json.load(f)
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "CNI_CONTAINERID": cid, "CNI_NETNS": netns, "CNI_IFNAME": ifname,
           "CNI_ARGS": args, "CNI_PATH": cni_path}
    os.makedirs(cache, exist_ok=True)
    cached = os.path.join(cache, cid + ".json")
    plugins = conflist["plugins"]
    if cmd == "ADD":
        prev = None
        for p in plugins:
            prev = run_plugin(plugin_conf(conflist, p, prev), "ADD", env, cni_path)
            with open(os.path.join(cache, "%s.%s.json" % (cid, p["type"])), "w") as f:
                json.dump(prev, f)
        with open(cached, "w") as f:
            json.dump(prev, f)
        print(json.dumps(prev))
        return
    prev = None
    if os.path.exists(cached):
        with open(cached) as f:
            prev = json.load(f)
    if cmd == "DEL":
        for p in reversed(plugins):
            run_plugin(plugin_conf(conflist, p, prev), "DEL", env, cni_path)
        if os.path.exists(cached):
            os.unlink(cached)
    elif cmd == "CHECK":
        for p in plugins:
            run_plugin(plugin_conf(conflist, p, prev), "CHECK", env, cni_path)
    else:
        sys.exit("cni-run.py: unknown command " + cmd)


main()
