package bpf

import (
	"net/netip"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/frame"
)

const benchExpr = "udp and dst port 7 and dst host 198.18.0.1"

// BenchmarkCompile is the cost of compiling a typical responder filter,
// from text to assembled instructions.
func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileRaw(benchExpr, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVM is the x/net/bpf VM's cost per frame for that filter, on a
// 64-byte frame it accepts (the longest path) and one it rejects early.
func BenchmarkVM(b *testing.B) {
	prog, err := Compile(benchExpr, nil)
	if err != nil {
		b.Fatal(err)
	}
	vm, err := xbpf.NewVM(prog)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 128)
	n, err := frame.BuildUDP(buf, &frame.UDPSpec{
		Src: netip.MustParseAddrPort("198.18.0.2:4000"), Dst: netip.MustParseAddrPort("198.18.0.1:7"),
		Payload: []byte("TEST"),
	})
	if err != nil {
		b.Fatal(err)
	}
	n = frame.PadEthernet(buf, n) + 4 // with FCS-sized tail: a 64-byte frame
	accept := buf[:n]
	reject := append([]byte(nil), accept...)
	reject[12], reject[13] = 0x08, 0x06 // ARP
	for _, c := range []struct {
		name string
		pkt  []byte
		want bool
	}{{"accept", accept, true}, {"reject", reject, false}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.pkt)))
			for b.Loop() {
				r, err := vm.Run(c.pkt)
				if err != nil || (r != 0) != c.want {
					b.Fatalf("Run = %d, %v", r, err)
				}
			}
		})
	}
}
