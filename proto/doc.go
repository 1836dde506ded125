// Package proto holds the protocol facts the rest of pktengine builds on:
// EtherType values and IP protocol numbers, the Internet checksum (RFC 1071)
// with pseudo-header sums (RFC 768, RFC 8200) and incremental updates
// (RFC 1624), UDP port ranges, and service names in /etc/services form.
//
// It depends on nothing but the standard library, so every other package can
// import it.
package proto
