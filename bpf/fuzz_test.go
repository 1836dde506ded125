package bpf

import (
	"net/netip"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
)

// FuzzCompile: no input panics; every accepted expression gives at most
// MaxInstructions instructions that assemble, pass x/net/bpf's NewVM and
// run; and optimisation never changes a verdict on frames long enough
// that no load can fail.
func FuzzCompile(f *testing.F) {
	for _, e := range diffExprs {
		f.Add(e)
	}
	for _, e := range ancillaryExprs {
		f.Add(e)
	}
	for _, e := range []string{"(", ")", "!!udp", "port 0x35", "port 010", "net ::/0", "ether proto \\arp",
		"src or dst net 198.18.0.0/15 and not (vlan 7 or inbound)", "vlan and vlan and vlan and vlan"} {
		f.Add(e)
	}
	buf := make([]byte, 512)
	var frames []testFrame
	for i, s := range []frame.UDPSpec{
		{Src: netip.MustParseAddrPort("198.18.0.2:53"), Dst: netip.MustParseAddrPort("198.18.0.1:7")},
		{Src: netip.MustParseAddrPort("[fd00::2]:80"), Dst: netip.MustParseAddrPort("[fd00::1]:7")},
		{Src: netip.MustParseAddrPort("10.1.2.3:7"), Dst: netip.MustParseAddrPort("1.2.3.4:53"), VLANs: []frame.VLANTag{{TCI: 10}}, Options: []byte{1, 1, 1, 0}},
	} {
		n, err := frame.BuildUDP(buf, &s)
		if err != nil {
			f.Fatal(err)
		}
		frames = append(frames, testFrame{name: string(rune('a' + i)), b: append([]byte(nil), buf[:n]...)})
	}
	f.Fuzz(func(t *testing.T, expr string) {
		for _, mode := range []VLANMode{VLANAncillary, VLANInPacket} {
			prog, err := Compile(expr, &Options{VLAN: mode})
			if err != nil {
				continue
			}
			if len(prog) == 0 || len(prog) > MaxInstructions {
				t.Fatalf("%q: %d instructions", expr, len(prog))
			}
			// NewVM validates the instruction form; Disassemble would turn
			// ancillary loads into LoadExtension, which the VM refuses.
			vm, err := xbpf.NewVM(prog)
			if err != nil {
				t.Fatalf("%q: NewVM: %v", expr, err)
			}
			raw, err := xbpf.Assemble(prog)
			if err != nil {
				t.Fatalf("%q: Assemble: %v", expr, err)
			}
			for _, fr := range frames {
				if hasNeg(raw) {
					// x/net/bpf's VM has no "neg"; evalRaw runs it.
				} else if _, err := vm.Run(fr.b); err != nil {
					t.Fatalf("%q: VM: %v", expr, err)
				}
				if _, err := evalRaw(raw, fr.b, meta{}); err != nil {
					t.Fatalf("%q: %v", expr, err)
				}
			}
		}
		checkOptimizer(t, expr, frames)
	})
}
