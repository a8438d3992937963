#!/usr/bin/env bash
# Installs the Debian packages knit needs to build, test and demo, asking
# apt-get only for those that are absent.  Run as root on Debian.
set -euo pipefail

packages=(
	# build
	build-essential pkg-config clang libclang-rt-14-dev
	libgcrypt20-dev libmnl-dev libcmocka-dev libjansson-dev libsqlite3-dev
	# port mapping (src/portmap): NAT-PMP and UPnP-IGD clients
	libnatpmp-dev libminiupnpc-dev
	# the NAT lab's C helpers
	libnetfilter-conntrack-dev libnftables-dev libnetfilter-queue-dev
	# system tests, the lab, demo and benchmarks
	iproute2 iputils-ping iperf3 wireguard-tools wireguard-go procps
	nftables conntrack tcpdump sqlite3 shellcheck socat jq
	# NFQUEUE for linkem: this kernel has xtables' target but not nft's queue
	iptables
	# ctfilter's test: UDP senders that stamp packets with the monotonic clock
	python3
	# the performance suite (knit-lab perf): HTTP client and plots
	curl gnuplot-nox
	# bench/crypto.c: the other ChaCha20-Poly1305 implementations to compare
	libssl-dev libsodium-dev
	# the lab's port-mapping router and its clients; miniupnpd-nftables has
	# no maintainer scripts or service: installing it starts nothing and
	# changes no firewall (the lab runs it inside a router namespace)
	miniupnpd-nftables natpmpc miniupnpc
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $EUID -ne 0 ]]; then
	echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# No recommends: wireguard-tools would otherwise pull in a kernel image.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
