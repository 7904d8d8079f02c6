/*
 * child.c -- what a freshly forked child does before it execs a program.
 *
 * A handler installed by the parent would run parent code in the child,
 * and an ignored signal stays ignored across exec, so both go back to
 * SIG_DFL; a blocked signal stays blocked across exec, so the mask is
 * emptied last.
 */
#include "child.h"

#include <signal.h>
#include <string.h>

void bt_child_reset_signals(void)
{
	struct sigaction sa;
	sigset_t none;
	int sig;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
