#!/bin/sh
# ppc64le-sysroot.sh -- assemble a ppc64el sysroot from Debian's packages.
#
#   tools/ppc64le-sysroot.sh OUT        (make ppc64le runs it as OUT=build-ppc64le)
#
# The cross compiler (Debian's gcc-powerpc64le-linux-gnu) brings its own C
# library; the libraries butte links against (libevent, jansson, libcurl and
# everything it loads, protobuf-c, sqlite3, libseccomp, cmocka) and the
# run-time libc with its loader come from Debian's ppc64el .deb files,
# unpacked with dpkg-deb -x into OUT/sysroot. Installing them as multiarch
# packages would need the exact versions of the amd64 ones, which a mirror
# does not always have; a folder of unpacked packages has no such tie.
#
# apt resolves the dependency closure with a private configuration under
# OUT/apt: its own package lists, cache and an empty dpkg status, with
# APT::Architecture=ppc64el and the host's sources. The host's apt state is
# never touched and nothing needs root. The package lists are fetched once
# and the .debs stay in OUT/apt/cache/archives, so a second run finds
# everything there and does not use the network (remove OUT/apt to fetch
# fresh lists).
#
# After unpacking, absolute symlinks are made relative (so they resolve
# inside the sysroot for the linker and for qemu's QEMU_LD_PREFIX), the
# loader is linked at /lib64/ld64.so.2 where ppc64le binaries look for it,
# and directories named *.d are folded away: the top-level Makefile
# includes every '*.d' under the build folder as a dependency file. They
# matter only to ldconfig, GSSAPI plugins and extra iconv charsets; the
# iconv list is appended to gconv-modules so nothing is lost there.
#
# The sysroot is built in a temporary folder and renamed into place at the
# end, so an interrupted run never leaves a half sysroot behind.
set -eu

OUT=${1:?usage: tools/ppc64le-sysroot.sh OUT}
TRIPLET=powerpc64le-linux-gnu
PACKAGES="libc6-dev libgcc-s1 libevent-dev libjansson-dev libcurl4-gnutls-dev
libprotobuf-c-dev libsqlite3-dev libseccomp-dev libcmocka-dev"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
APTDIR=$OUT/apt
ARCHIVES=$APTDIR/cache/archives
SYSROOT=$OUT/sysroot
NEW=$OUT/sysroot.new

die() {
	echo "ppc64le-sysroot: $*" >&2
	exit 1
}

command -v apt-get >/dev/null || die "apt-get is missing: the sysroot is made from Debian's ppc64el packages"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing"

mkdir -p "$APTDIR/state/lists/partial" "$ARCHIVES/partial"
[ -f "$APTDIR/state/status" ] || : >"$APTDIR/state/status"

apt_ppc() {
	apt-get -q \
	    -o Dir::State="$APTDIR/state" \
	    -o Dir::State::status="$APTDIR/state/status" \
	    -o Dir::Cache="$APTDIR/cache" \
	    -o Dir::Cache::pkgcache="" -o Dir::Cache::srcpkgcache="" \
	    -o APT::Architecture=ppc64el \
	    -o APT::Architectures::=ppc64el \
	    -o APT::Sandbox::User="$(id -un)" \
	    -o APT::Install-Recommends=false \
	    "$@"
}

have_lists() {
	for f in "$APTDIR"/state/lists/*_binary-ppc64el_Packages*; do
		[ -f "$f" ] && return 0
	done
	return 1
}

# 1. the ppc64el package lists, once
if ! have_lists; then
	echo "ppc64le-sysroot: fetching the ppc64el package lists into $APTDIR"
	# A mirror in the middle of a sync may fail one index (often
	# -security); the others still resolve every package, just at the
	# version the main suite has.
	apt_ppc update || echo "ppc64le-sysroot: warning: some ppc64el index files failed; going on with the ones fetched" >&2
	have_lists || die "no ppc64el package list could be fetched (is a Debian mirror reachable?)"
fi

# 2. the dependency closure, as apt would install it on an empty ppc64el system
# shellcheck disable=SC2086
PLAN=$(apt_ppc -s install $PACKAGES) || die "apt cannot resolve the ppc64el packages: $PLAN"
DEBS=$(printf '%s\n' "$PLAN" | sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) [^[]*\[\([a-z0-9]*\)\]).*/\1_\2_\3.deb/p' | sed 's/:/%3a/')
[ -n "$DEBS" ] || die "apt planned no package; its answer was: $PLAN"

missing=0
for deb in $DEBS; do
	[ -f "$ARCHIVES/$deb" ] || missing=1
done
if [ $missing = 1 ]; then
	echo "ppc64le-sysroot: downloading the ppc64el packages into $ARCHIVES"
	# shellcheck disable=SC2086
	apt_ppc -y --download-only install $PACKAGES || die "downloading the ppc64el packages failed"
fi

# 3. unpack into a fresh folder (never left behind: it holds *.d folders)
rm -rf "$NEW"
trap 'rm -rf "$NEW"' EXIT
trap 'exit 1' INT TERM HUP
mkdir -p "$NEW"
n=0
for deb in $DEBS; do
	[ -f "$ARCHIVES/$deb" ] || die "'$deb' is missing from $ARCHIVES after the download"
	dpkg-deb -x "$ARCHIVES/$deb" "$NEW"
	n=$((n + 1))
done

# 4. absolute symlinks become relative ones inside the sysroot
find "$NEW" -type l -lname '/*' | while read -r link; do
	target=$(readlink "$link")
	rel=$(realpath -m --relative-to="$(dirname "$link")" "$NEW$target")
	ln -sfn "$rel" "$link"
done

# 5. the loader where ppc64le ELF binaries ask for it
[ -e "$NEW/lib/$TRIPLET/ld64.so.2" ] || die "libc6 did not bring lib/$TRIPLET/ld64.so.2"
mkdir -p "$NEW/lib64"
ln -sfn "../lib/$TRIPLET/ld64.so.2" "$NEW/lib64/ld64.so.2"

# 6. no path named *.d (see above)
gconv=$NEW/usr/lib/$TRIPLET/gconv
if [ -d "$gconv/gconv-modules.d" ]; then
	for f in "$gconv"/gconv-modules.d/*.conf; do
		[ -f "$f" ] && cat "$f" >>"$gconv/gconv-modules"
	done
fi
find "$NEW" -depth -name '*.d' -exec rm -rf {} +

# 7. the link step needs these; fail here rather than in the compiler
for f in usr/lib/$TRIPLET/libcurl.so usr/lib/$TRIPLET/libevent.so \
    usr/lib/$TRIPLET/libjansson.so usr/lib/$TRIPLET/libprotobuf-c.so \
    usr/lib/$TRIPLET/libsqlite3.so usr/lib/$TRIPLET/libseccomp.so \
    usr/lib/$TRIPLET/libcmocka.so usr/include/event2/event.h lib/$TRIPLET/libc.so.6; do
	[ -e "$NEW/$f" ] || die "the unpacked packages lack $f"
done

printf '%s\n' "$DEBS" >"$NEW/.packages"
rm -rf "$SYSROOT"
mv "$NEW" "$SYSROOT"
echo "ppc64le-sysroot: $n packages unpacked into $SYSROOT"
