#!/usr/bin/env bash
# Installs the programs that `make test`, `make demo` and .ci/run need
# besides Go, on Debian: each command of the table below that is missing,
# from its package. As root it runs `apt-get update` once and installs the
# missing packages without questions, saying which; as any other user it
# names them and exits 1. With every command present it does nothing.
#
# Usage: scripts/deps.sh
set -euo pipefail

# One line per command: the command, its Debian package, and what needs it.
# To add a dependency, add a line.
readonly table='
ip        iproute2     the lab of the tests, the demo and the harness: namespaces, veth, addresses
ethtool   ethtool      the lab: offload settings of its veth interfaces
tcpdump   tcpdump      tests that compare the filter compiler with tcpdump -d
tshark    tshark       tests that read the captures of serve --pcap
trafgen   netsniff-ng  the generator comparison of pktengine bench (make demo, make bench-lab)
capsh     libcap2-bin  tests that drop CAP_NET_RAW
setpriv   util-linux   tests that run serve as an unprivileged user
promtool  prometheus   tests that check the metrics exposition
knotd     knot         examples/dnsd: Knot DNS, the oracle its answers are compared with, and its XDP mode
kdig      knot-dnsutils the DNS benchmark: kxdpgun, the XDP query generator of Knot DNS
dnsperf   dnsperf      examples/dnsd: load from the peer namespace; the DNS benchmark
scapy     python3-scapy tests that check IGMP/MLD messages and queries against scapy
'

# ip, ethtool, capsh and knotd live in /usr/sbin, which a user's PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

missing=()
while read -r cmd pkg why; do
	[ -n "$cmd" ] || continue
	if ! command -v "$cmd" >/dev/null 2>&1; then
		echo "deps: $cmd is missing (package $pkg: $why)"
		[[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
	fi
done <<<"$table"
[ ${#missing[@]} -gt 0 ] || exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: not root, so nothing installed. As root, run scripts/deps.sh (make test and make demo do)" >&2
	echo "deps: or apt-get install ${missing[*]}" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: no apt-get here; install the packages named above (Debian names) by hand" >&2
	exit 1
fi

# tshark's package asks whether non-root users may capture; the answer
# (no: the tests capture as root) is given before it can ask.
if [[ " ${missing[*]} " == *" tshark "* ]]; then
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
fi
echo "deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# The prometheus package is the Prometheus server too, which Debian starts
# and enables under systemd; only its promtool is wanted here.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
	systemctl disable --now prometheus.service >/dev/null 2>&1 &&
		echo "deps: stopped and disabled the Prometheus server the prometheus package started (only promtool is needed)"
fi
# Likewise the knot package's knot.service: the tests start knotd
# themselves, in a lab namespace, with a configuration of their own.
if [[ " ${missing[*]} " == *" knot "* ]] && [ -d /run/systemd/system ]; then
	systemctl disable --now knot.service >/dev/null 2>&1 &&
		echo "deps: stopped and disabled the Knot DNS service the knot package started (the tests run their own knotd)"
fi

status=0
while read -r cmd pkg _; do
	if [ -n "$cmd" ] && ! command -v "$cmd" >/dev/null 2>&1; then
		echo "deps: $cmd is still missing after installing $pkg" >&2
		status=1
	fi
done <<<"$table"
[ $status -eq 0 ] && echo "deps: installed ${missing[*]}"
exit $status
