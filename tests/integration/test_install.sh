#!/usr/bin/env bash
# test_install.sh - `make install` into a DESTDIR, then a small program
# built only from what was installed, with the flags pkg-config gives for
# shoal.pc: it prints shoal_version() and puts and gets an object through
# the installed shared library (found by its versioned soname) against a
# daemon started from the installed binary.
#
# Usage: tests/integration/test_install.sh [path/to/shoal] (only the build
# it belongs to matters: build/san is skipped, make installs the plain
# build). Prints a summary "N passed, N failed"; exits 1 on any failure.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" install-test "${1:-}"
cd "$(dirname "$0")/../.."
DEST=$TMP/dest

case "${1:-}" in
*/san/*)
	echo "test_install: 0 passed, 0 failed (the sanitizer build is not installed)"
	exit 0
	;;
esac

if timeout 300 make -s install DESTDIR="$DEST" PREFIX=/usr >"$TMP/make.log" 2>&1; then
	ok
else
	fail "make install: $(tail -5 "$TMP/make.log")"
fi
version=$(sed -n 's/^#define SHOAL_VERSION_STRING "\(.*\)"/\1/p' include/shoal.h)
abi=$(sed -n 's/^#define SHOAL_ABI_VERSION \([0-9]*\)/\1/p' include/shoal.h)
soname=libshoal.so.$abi
lib=$DEST/usr/lib
for f in usr/bin/shoal usr/include/shoal.h usr/lib/libshoal.a \
	"usr/lib/libshoal.so.$version" "usr/lib/$soname" usr/lib/libshoal.so \
	usr/lib/pkgconfig/shoal.pc; do
	[ -e "$DEST/$f" ] && ok || fail "not installed: $f"
done
got=$(readelf -d "$lib/libshoal.so.$version" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$got" = "$soname" ] && ok || fail "soname is '$got', not $soname"
grep -qx "prefix=/usr" "$lib/pkgconfig/shoal.pc" && ok || fail "shoal.pc does not name the final prefix"

# pkg-config reads the installed shoal.pc; the sysroot maps its /usr paths
# into DESTDIR.
export PKG_CONFIG_PATH=$lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEST
[ "$(pkg-config --modversion shoal 2>&1)" = "$version" ] && ok ||
	fail "pkg-config --modversion: $(pkg-config --modversion shoal 2>&1)"
cat >"$TMP/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <shoal.h>

int main(int argc, char **argv)
{
	shoal_client *c;
	shoal_view v;
	shoal_id id;
	int rc;

	printf("%s\n", shoal_version());
	if (argc < 2 || strcmp(shoal_version(), SHOAL_VERSION_STRING) != 0)
		return 2;
	if ((rc = shoal_connect(argv[1], &c)) != 0) {
		fprintf(stderr, "connect: %s\n", shoal_strerror(rc));
		return 1;
	}
	memset(&id, 7, sizeof(id));
	rc = shoal_put(c, &id, "installed", 9, NULL, 0);
	if (rc == 0)
		rc = shoal_get(c, &id, 1, 1000, &v);
	if (rc == 0 && (v.status != 0 || v.data_size != 9 ||
	                memcmp(v.data, "installed", 9) != 0))
		rc = -1;
	if (rc == 0)
		shoal_release(c, &v);
	shoal_disconnect(c);
	return rc == 0 ? 0 : 1;
}
C
# shellcheck disable=SC2046
if cc -std=c11 -Wall -Werror -o "$TMP/prog" "$TMP/prog.c" $(pkg-config --cflags --libs shoal) \
	>"$TMP/cc.log" 2>&1; then
	ok
else
	fail "building against the installed library: $(cat "$TMP/cc.log")"
fi
ldd_out=$(LD_LIBRARY_PATH=$lib ldd "$TMP/prog" 2>&1)
echo "$ldd_out" | grep -q "$soname => $lib/$soname" && ok ||
	fail "the program does not load the installed $soname: $ldd_out"

SHOAL=$DEST/usr/bin/shoal # the installed daemon
start_daemon "$TMP/s.sock" -m 16M
out=$(LD_LIBRARY_PATH=$lib timeout 20 "$TMP/prog" "$TMP/s.sock" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok || fail "the program failed ($rc): $out"
[ "$(echo "$out" | head -1)" = "$version" ] && ok || fail "shoal_version() said '$out'"

finish test_install
