// Package robust holds no code: its tests run the engine against
// traffic nobody designed, in a network lab, and check that it keeps
// serving, counts every frame it loses, and never amplifies.
//
//   - TestHostileFrames sends malformed, spoofed, looping and oversized
//     frames from a raw packet socket while a kernel UDP client keeps
//     getting echo replies, and finds every frame in its documented
//     counter.
//   - TestOverload offers ten times the engine's zero-loss rate with one
//     slow port consumer and accounts for every frame sent: delivered,
//     queue overflows, ring drops, or dropped by veth before the ring.
//     Its length is the -robust.overload flag (see overload_test.go).
//   - TestSlowConsumerIsolation, TestInterfaceDownUp,
//     TestPeerNamespaceDeleted, TestOwnNamespaceNameDeleted and
//     TestCloseUnderLoad cover faults.
//
// TestMain fails the run if a test leaks file descriptors or
// goroutines. docs/SECURITY.md maps the threats to these tests.
package robust
