/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Upgrades and restarts that drop no connection: a new daemon process takes the listening
 * sockets of the running one over a unix socket (SCM_RIGHTS), starts serving on the very same
 * sockets (their accept queues included, so not even a connection being set up is lost), and
 * only then tells the old process, which stops accepting and drains what it still carries.
 * The BPF datapath keeps delivering every established connection to the socket that owns it,
 * whichever process that is (HAProxy's and Envoy's hot restarts, done with plain fd passing).
 *
 * One process serves at a time per path: the serving process holds an flock on PATH.lock
 * (with its pid written in it) and answers hand-over requests on PATH (SOCK_SEQPACKET). A
 * starting process connects to PATH: a running one answers and offers its sockets; nobody
 * answering and the lock free means a fresh start; the lock held with nobody answering is two
 * daemons started at once, refused with both pids named. PATH is only ever replaced when it is
 * a socket.
 *
 * The wire (one message per line of text, "ZMHO1 " first, version checked):
 *   new -> old  "ZMHO1 hello DAEMON PID"
 *   old -> new  "ZMHO1 offer N PID" then N messages "ZMHO1 sock NAME", one fd each
 *               | "ZMHO1 busy PID" (a hand-over is under way) | "ZMHO1 wrong DAEMON"
 *   new -> old  "ZMHO1 taken"      (sent once the new process serves)
 *   old -> new  "ZMHO1 released"   (the old one stopped accepting and let go of the lock)
 * A new process that dies before "taken" changes nothing: the old one keeps serving.
 *
 * Sockets are exchanged by name ("ztunnel:outbound:4", "obs:admin:15000"): the daemon
 * registers what it listens on (rt_export_add) and, starting, takes by name what it inherited
 * (rt_inherit_take) before it would create a socket itself. Several sockets may share a name
 * (one per worker in a SO_REUSEPORT group).
 */
#ifndef ZMESH_RT_HANDOVER_H
#define ZMESH_RT_HANDOVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "rt/loop.h"

#define RT_HANDOVER_MAX_SOCKS 512
#define RT_HANDOVER_NAME_LEN  48

/* ---- starting ---- */

/*
 * Begin start-up under path (NULL: no hand-over at all, returns 0 with nothing inherited).
 * Taking over: the old process's sockets become inheritable and *old_pid is set; fresh start:
 * *old_pid is 0 and the lock is ours. -errno with a one-line message in err (another process
 * is starting, path is not ours, the old one did not answer in time...).
 */
int rt_handover_begin(const char *path, const char *daemon, pid_t *old_pid, char *err, size_t len);

/* The next inherited socket called name, or -1. Taken sockets are the caller's. */
int rt_inherit_take(const char *name);
/* How many inherited sockets called name are left. */
unsigned int rt_inherit_count(const char *name);
/*
 * How many of those worker id (of n, taking them in order) takes: its share of what is left,
 * rounded up, so that every later worker still gets one and none is closed (a connection in
 * an accept queue is never lost).
 */
static inline unsigned int rt_inherit_share(const char *name, int id, int n)
{
	unsigned int left = (unsigned int)(n - id);

	return left ? (rt_inherit_count(name) + left - 1) / left : 0;
}

/*
 * We serve now: tell the old process (it stops accepting and releases the lock), take the lock,
 * close the inherited sockets nobody took, and answer hand-overs on path from now on, in loop
 * l (the control loop). On a fresh start only the last part. 0 or -errno (err set).
 */
struct rt_handover_ops {
	/*
	 * A newer process serves on our sockets: stop accepting on every exported socket
	 * (rt_export_del them, close our copies) before returning. Runs in loop l.
	 */
	void (*release)(void *ud);
	void *ud;
};
int rt_handover_commit(struct rt_loop *l, const struct rt_handover_ops *ops, char *err, size_t len);

/* Stop answering hand-overs (exit path); releases the lock if still held. */
void rt_handover_fini(struct rt_loop *l);

/* ---- what we serve on ---- */

/* Offer fd under name to a future process. 0 or -ENOSPC. Thread-safe. */
int rt_export_add(const char *name, int fd);
/* No longer offered (closing it, or handed over). Thread-safe. */
void rt_export_del(int fd);

#endif
