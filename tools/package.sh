#!/usr/bin/env bash
# What a person installs (issue 16), into dist/ (or $1):
#   Linux:   libra_VERSION_amd64.deb (both programs, a desktop entry, the icon) and
#            libra-VERSION-linux-x86_64.tar.gz (the same files, to unpack anywhere);
#   Windows: libra-VERSION-windows-x86_64.zip (libra-app.exe, libra.exe, README.txt),
#            cross-built with mingw;
# and SHA256SUMS over all three. LIBRA_PACKAGE_SKIP_WINDOWS=1 builds the Linux ones only.
# Needs: dpkg-deb, zip, and for Windows the x86_64-pc-windows-gnu target and mingw.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
targets="${CARGO_TARGET_DIR:-target}"
rm -rf "$out" && mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

cargo build --release --locked -p libra-tools -p libra-app
bin="$targets/release"

# The file tree both Linux packages carry.
root="$stage/root"
# Stripped: the release profile keeps line tables for backtraces, which a package need not carry.
install -Dm755 -s "$bin/libra" "$root/usr/bin/libra"
install -Dm755 -s "$bin/libra-app" "$root/usr/bin/libra-app"
install -Dm644 tools/package/libra.desktop "$root/usr/share/applications/libra.desktop"
mkdir -p "$root/usr/share/icons/hicolor/256x256/apps"
"$bin/libra-app" --write-icon "$root/usr/share/icons/hicolor/256x256/apps/libra.png"
install -Dm644 README.md "$root/usr/share/doc/libra/README.md"

# .deb: the tree plus its control file. The GL, X11/Wayland and xkbcommon libraries are
# loaded at run time, so they are dependencies of the package, not of the binaries.
mkdir -p "$root/DEBIAN"
size=$(du -sk "$root/usr" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: libra
Version: $version
Architecture: amd64
Maintainer: Libra developers <libra@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.34), libgcc-s1, libgl1, libegl1, libxkbcommon0, libfontconfig1
Recommends: libx11-xcb1, libxcursor1, libxi6, libxkbcommon-x11-0, libwayland-client0
Section: net
Priority: optional
Homepage: https://localhost/libra
Description: serverless, end-to-end encrypted messenger
 Libra keeps every message in signed, hash-chained logs on your devices and
 syncs them directly between contacts over QUIC: no server, no account.
 This package holds the desktop app (libra-app) and the command line (libra).
CONTROL
dpkg-deb --root-owner-group --build "$root" "$out/libra_${version}_amd64.deb" >/dev/null
rm -rf "$root/DEBIAN"

tardir="$stage/libra-$version"
mkdir -p "$tardir"
cp -a "$root/usr/bin" "$root/usr/share" "$tardir/"
tar -C "$stage" -czf "$out/libra-$version-linux-x86_64.tar.gz" "libra-$version"

if [ "${LIBRA_PACKAGE_SKIP_WINDOWS:-0}" != 1 ]; then
  cargo build --release --locked -p libra-tools -p libra-app --target x86_64-pc-windows-gnu
  win="$targets/x86_64-pc-windows-gnu/release"
  zipdir="$stage/libra-$version-windows"
  mkdir -p "$zipdir"
  cp "$win/libra-app.exe" "$win/libra.exe" "$zipdir/"
  x86_64-w64-mingw32-strip "$zipdir/libra-app.exe" "$zipdir/libra.exe"
  "$bin/libra-app" --write-icon "$zipdir/libra.png"
  sed 's/$/\r/' >"$zipdir/README.txt" <<TEXT
Libra $version for Windows (64-bit)

libra-app.exe  the desktop app: double-click it. Your data lives in
               %APPDATA%\\Libra\\libra\\data, readable by your user only.
libra.exe      the command line, for a terminal (libra.exe --help). Beside a
               running app it talks to the app through a named pipe only your
               user may open.

Nothing to install: keep both files together in any folder.
TEXT
  (cd "$stage" && zip -qr "$out/libra-$version-windows-x86_64.zip" "libra-$version-windows")
fi

(cd "$out" && sha256sum -- * >SHA256SUMS)
ls -l "$out"
