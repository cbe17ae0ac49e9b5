/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An intrusive doubly-linked list (a circular list with a head node, the kernel's list_head
 * shape) and container_of: objects embed a struct zm_link and are found back from it, so
 * unlinking is O(1) and never a walk, and one implementation serves every per-worker set of
 * live objects (connections, clients, HBONE sessions).
 */
#ifndef ZMESH_COMMON_LIST_H
#define ZMESH_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The struct holding member m of type T that p points to. */
#define zm_container_of(p, T, m) ((T *)((char *)(p)-offsetof(T, m)))

struct zm_link {
	struct zm_link *prev, *next;
};

static inline void zm_list_init(struct zm_link *head)
{
	head->prev = head->next = head;
}

static inline bool zm_list_empty(const struct zm_link *head)
{
	return head->next == head;
}

/* Insert n right after head (the front). */
static inline void zm_list_add(struct zm_link *head, struct zm_link *n)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

/* Unlink n (a no-op on a node never linked or already unlinked). */
static inline void zm_list_del(struct zm_link *n)
{
	if (!n->next)
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = NULL;
}

/* Every node of head, pos the current one and tmp its successor: pos may be unlinked. */
#define zm_list_each_safe(pos, tmp, head)                                                          \
	for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                           \
	     (pos) = (tmp), (tmp) = (pos)->next)

#endif
