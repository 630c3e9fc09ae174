#!/usr/bin/env bash
# release.sh cross-builds static comet binaries into dist/ ($DIST) and prints each
# size. With no arguments it builds every target of the contract; otherwise
# only the targets given. A target is OS/ARCH, or linux/arm/6 and
# linux/arm/7 for the two ARM levels (plain linux/arm means GOARM=6, the one
# that runs on every Raspberry Pi).
#
#   scripts/release.sh                    # all targets
#   scripts/release.sh linux/arm          # CI: the Raspberry Pi build only
#   VERSION=1.2.0 scripts/release.sh      # version stamped into the binary
#
# Fails if a linux/arm binary is 8 MB (8,000,000 bytes) or more.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(linux/arm/6 linux/arm/7 linux/arm64 linux/amd64 linux/386 linux/riscv64 darwin/arm64 windows/amd64)
arm_limit=8000000

if [ -z "${VERSION:-}" ]; then
	VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
fi
if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=("${all_targets[@]}")
fi

dist=${DIST:-dist}
mkdir -p "$dist"
status=0
for target in "${targets[@]}"; do
	IFS=/ read -r goos goarch goarm extra <<<"$target"
	if [ -z "$goos" ] || [ -z "$goarch" ] || [ -n "$extra" ]; then
		echo "release: bad target $target (want OS/ARCH or linux/arm/6|7)" >&2
		exit 2
	fi
	if [ "$goarch" = arm ]; then
		goarm=${goarm:-6}
		case $goarm in 6 | 7) ;; *)
			echo "release: bad ARM level in $target (want 6 or 7)" >&2
			exit 2
			;;
		esac
		name="comet-$VERSION-$goos-armv$goarm"
	elif [ -n "$goarm" ]; then
		echo "release: bad target $target (a level only goes with arm)" >&2
		exit 2
	else
		name="comet-$VERSION-$goos-$goarch"
	fi
	[ "$goos" = windows ] && name="$name.exe"
	out="$dist/$name"
	env CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" ${goarm:+GOARM=$goarm} \
		go build -trimpath -ldflags="-s -w -X main.version=$VERSION" -o "$out" .
	size=$(wc -c <"$out" | tr -d ' ')
	printf '%-40s %10d bytes\n' "$out" "$size"
	if [ "$goos/$goarch" = linux/arm ] && [ "$size" -ge "$arm_limit" ]; then
		echo "release: $out is $size bytes, over the $arm_limit byte budget" >&2
		status=1
	fi
done
exit $status
