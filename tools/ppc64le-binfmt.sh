#!/bin/sh
# ppc64le-binfmt.sh -- make sure the kernel runs ppc64le ELF files with qemu.
#
#   tools/ppc64le-binfmt.sh            exit 0 when ppc64le programs can start
#
# Debian's qemu-user-static and binfmt-support declare the qemu-ppc64le
# format; on a machine without systemd (a fresh container, a CI runner)
# nobody registers it with the kernel. As root this script mounts
# binfmt_misc when it is missing and registers the qemu-ppc64le entry with
# update-binfmts (or switches a registered one back on); without root it
# only checks. It fails with one line
# saying what is missing and how to fix it.
set -u

BINFMT=/proc/sys/fs/binfmt_misc
ENTRY=$BINFMT/qemu-ppc64le

fail() {
	echo "ppc64le-binfmt: $*" >&2
	exit 1
}

enabled() {
	[ -r "$ENTRY" ] && head -n 1 "$ENTRY" | grep -qx enabled
}

enabled && exit 0

root=no
[ "$(id -u)" = 0 ] && root=yes

if [ ! -e "$BINFMT/register" ]; then
	[ $root = yes ] || fail "binfmt_misc is not mounted on $BINFMT; as root: mount -t binfmt_misc binfmt_misc $BINFMT"
	mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null ||
	    fail "binfmt_misc is not mounted on $BINFMT and mounting it failed (a container needs --privileged or a host with qemu-user-static registered)"
fi

if ! enabled; then
	command -v update-binfmts >/dev/null ||
	    fail "update-binfmts is missing; run 'make deps' (Debian binfmt-support and qemu-user-static)"
	[ -e /usr/share/binfmts/qemu-ppc64le ] || [ -e /var/lib/binfmts/qemu-ppc64le ] ||
	    fail "no qemu-ppc64le format is declared; run 'make deps' (Debian qemu-user-static)"
	[ $root = yes ] || fail "the qemu-ppc64le binfmt entry is not enabled; as root: update-binfmts --enable qemu-ppc64le"
	if [ -e "$ENTRY" ]; then
		# registered but switched off: update-binfmts takes it as enabled
		echo 1 >"$ENTRY" 2>/dev/null || true
	else
		update-binfmts --enable qemu-ppc64le >/dev/null 2>&1 || true
	fi
fi

enabled || fail "the qemu-ppc64le binfmt entry could not be enabled (update-binfmts --enable qemu-ppc64le failed; is binfmt_misc writable here?)"
exit 0
