// Package robust holds no code: its tests run the engine against
// traffic nobody designed, in a network lab, and check that it keeps
// serving, counts every frame it loses, and never amplifies.
//
//   - TestHostileFrames sends malformed, spoofed, looping and oversized
//     frames from a raw packet socket while a kernel UDP client keeps
//     getting echo replies, and finds every frame in its documented
//     counter.
//   - TestOverload floods the engine (as far past its zero-loss rate as
//     the machine allows) with one slow port consumer and accounts for
//     every frame sent: echoed, delivered, queue overflows, ring drops.
//     Its length is the -robust.overload flag, or $PKTENGINE_ROBUST_OVERLOAD
//     (15 s by default).
//   - TestSlowConsumerIsolation: a slow consumer loses only its own
//     datagrams.
//   - TestInterfaceDownUp (outages counted, logged and served through),
//     TestLinkFail (the engine stops with ENETDOWN), TestInterfaceDeleted
//     and TestPeerNamespaceDeleted (it stops with ENODEV, nothing hangs),
//     TestOwnNamespaceNameDeleted, TestCloseUnderLoad and
//     TestStatusAfterClose cover faults; TestStatSocketRequestBounded the
//     stat socket.
//
// TestMain fails the run if a test leaks file descriptors or
// goroutines. docs/SECURITY.md maps the threats to these tests.
package robust
