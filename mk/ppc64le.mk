# mk/ppc64le.mk -- butte for OpenPower (ppc64le), built and tested on x86_64.
#
#   make ppc64le          the five binaries, the unit tests and the fuzz replayers
#                         for ppc64le in build-ppc64le/, with powerpc64le-linux-gnu-gcc
#   make test-ppc64le     the unit tests (and the fuzz corpora) run under qemu-user
#                         through binfmt_misc
#   make ppc64le-sysroot  only the ppc64el sysroot (build-ppc64le/sysroot)
#   make ppc64le-binfmt   check (as root: set up) binfmt_misc for ppc64le ELF files
#   make clean-ppc64le    remove the ppc64le build; keeps the sysroot and the
#                         downloaded packages (rm -rf build-ppc64le for all)
#
# The binaries are ordinary dynamic ppc64le executables. The libraries they
# link and load come from Debian's ppc64el packages, unpacked into
# build-ppc64le/sysroot by tools/ppc64le-sysroot.sh (libc and its loader
# included), so on x86_64 they start as they are with
#   QEMU_LD_PREFIX=build-ppc64le/sysroot build-ppc64le/butte-agent --help
# and on a POWER machine with Debian's own libraries. They are not static
# because Debian ships no static libraries for much of what libcurl loads
# (Kerberos, LDAP, GnuTLS pieces), and a static glibc still wants shared
# NSS modules at run time.
#
# The build itself is the top-level Makefile's, run again with BUILD,
# CC and pkg-config pointed at the cross compiler and the sysroot: the same
# sources, flags (-Wall -Wextra -Werror ...) and rules. protoc-c runs on
# the host. pkg-config is told that the sysroot's include and library
# folders are system folders, so it names only the libraries and gcc's
# --sysroot finds their headers after its own.

PPC64LE_BUILD    := build-ppc64le
PPC64LE_TRIPLET  := powerpc64le-linux-gnu
PPC64LE_SYSROOT  := $(CURDIR)/$(PPC64LE_BUILD)/sysroot
PPC64LE_STAMP    := $(PPC64LE_BUILD)/sysroot/.packages
PPC64LE_LIBDIRS  := $(PPC64LE_SYSROOT)/lib/$(PPC64LE_TRIPLET):$(PPC64LE_SYSROOT)/usr/lib/$(PPC64LE_TRIPLET)
PPC64LE_CC       := $(PPC64LE_TRIPLET)-gcc --sysroot=$(PPC64LE_SYSROOT) -Wl,-rpath-link=$(PPC64LE_LIBDIRS)
PPC64LE_PKGENV   := PKG_CONFIG_PATH= \
    PKG_CONFIG_LIBDIR=$(PPC64LE_SYSROOT)/usr/lib/$(PPC64LE_TRIPLET)/pkgconfig:$(PPC64LE_SYSROOT)/usr/share/pkgconfig \
    PKG_CONFIG_SYSROOT_DIR=$(PPC64LE_SYSROOT) \
    PKG_CONFIG_SYSTEM_INCLUDE_PATH=$(PPC64LE_SYSROOT)/usr/include:$(PPC64LE_SYSROOT)/usr/include/$(PPC64LE_TRIPLET) \
    PKG_CONFIG_SYSTEM_LIBRARY_PATH=$(PPC64LE_LIBDIRS)
PPC64LE_UNITS    := $(patsubst tests/unit/%.c,$(PPC64LE_BUILD)/tests/%,$(UNIT_SRC))
PPC64LE_FUZZERS  := $(patsubst tests/fuzz/%.c,$(PPC64LE_BUILD)/fuzz/%,$(FUZZ_SRC))

.PHONY: ppc64le test-ppc64le ppc64le-sysroot ppc64le-binfmt ppc64le-targets clean-ppc64le

ppc64le-sysroot: $(PPC64LE_STAMP)

$(PPC64LE_STAMP): tools/ppc64le-sysroot.sh
	@command -v $(PPC64LE_TRIPLET)-gcc >/dev/null || { echo "make ppc64le: $(PPC64LE_TRIPLET)-gcc is missing; run 'make deps' (Debian gcc-powerpc64le-linux-gnu)" >&2; exit 1; }
	sh tools/ppc64le-sysroot.sh $(PPC64LE_BUILD)

ppc64le: $(PPC64LE_STAMP)
	+@$(PPC64LE_PKGENV) $(MAKE) --no-print-directory BUILD=$(PPC64LE_BUILD) \
	    CC="$(PPC64LE_CC)" SAN= FUZZER= ppc64le-targets

# run by the recursive make above, where BUILD is already build-ppc64le
ppc64le-targets: $(BINS) $(UNITS) $(FUZZERS)

ppc64le-binfmt:
	@sh tools/ppc64le-binfmt.sh

clean-ppc64le:
	rm -rf $(PPC64LE_BUILD)/obj $(PPC64LE_BUILD)/gen $(PPC64LE_BUILD)/tests $(PPC64LE_BUILD)/fuzz \
	    $(PPC64LE_BUILD)/libbutte.a $(patsubst %,$(PPC64LE_BUILD)/%,butte-master butte-agent butte-supervise butte-relay butte)

# The unit programs run directly, so the kernel hands them to qemu through
# binfmt_misc, exactly as the ppc64le agent runs in the integration tests.
# The fuzz targets replay their corpora too: parsers are where POWER's
# unsigned char and other ABI differences would show.
test-ppc64le: ppc64le ppc64le-binfmt
	@pass=0; fail=0; \
	for t in $(PPC64LE_UNITS) $(PPC64LE_FUZZERS); do \
	    case "$$(od -An -tx1 -j18 -N2 $$t | tr -d ' ')" in \
	    1500) ;; \
	    *) echo "test-ppc64le: $$t is not a ppc64le ELF file" >&2; fail=$$((fail + 1)); continue ;; \
	    esac; \
	    corpus=tests/fuzz/corpus/$$(basename $$t); \
	    case $$t in \
	    */fuzz/*) [ -d $$corpus ] || continue; \
	        echo "== $$t $$corpus (ppc64le under qemu-user)"; \
	        QEMU_LD_PREFIX=$(PPC64LE_SYSROOT) $$t $$corpus >/dev/null ;; \
	    *) echo "== $$t (ppc64le under qemu-user)"; \
	        QEMU_LD_PREFIX=$(PPC64LE_SYSROOT) $$t ;; \
	    esac && pass=$$((pass + 1)) || { echo "test-ppc64le: FAILED $$t" >&2; fail=$$((fail + 1)); }; \
	done; \
	echo "test-ppc64le: unit and fuzz-corpus programs under qemu-ppc64le"; \
	echo "test-ppc64le: $$pass passed, $$fail failed"; \
	test $$fail = 0
