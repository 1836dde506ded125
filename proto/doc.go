// Package proto holds the protocol facts the rest of pktengine builds on:
// EtherType values and IP protocol numbers, the Internet checksum (RFC 1071)
// with pseudo-header sums (RFC 768, RFC 8200) and incremental updates
// (RFC 1624), UDP port ranges (RFC 6335), and service names in
// /etc/services form.
//
// It depends on nothing but the standard library, so every other package can
// import it. Checksum uses unsafe native loads on amd64, arm64, ppc64le and
// loong64 (in checksum_unsafe.go only); build with the purego tag to use the
// portable code everywhere.
package proto
