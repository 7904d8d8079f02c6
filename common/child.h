/*
 * child.h -- what a freshly forked child does before it execs a program.
 *
 * Used where the daemons start processes of their own (the agent's health
 * check commands) and by butte-supervise, which links only this and the C
 * library. Async-signal-safe: callable between fork (or vfork) and exec.
 */
#ifndef BT_CHILD_H
#define BT_CHILD_H

/* every signal back to its default disposition, and none blocked */
void bt_child_reset_signals(void);

#endif
