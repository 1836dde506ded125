package loadgen_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/pktengine/pktengine/frame"
	"github.com/pktengine/pktengine/loadgen"
)

// Offer 250 000 frames per second to an echo service for ten seconds,
// with a progress line every second, and print what came back. It needs
// CAP_NET_RAW and an interface that reaches the responder, so it is
// compiled here, not run.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ifi, err := net.InterfaceByName("veth0")
	if err != nil {
		log.Fatal(err)
	}
	sum, err := loadgen.Run(ctx, ifi, &loadgen.Config{
		Spec: loadgen.Spec{Dst: netip.MustParseAddrPort("198.18.0.2:7"), Flows: 16},
		Load: loadgen.Load{Rate: 250e3, Duration: 10 * time.Second},
	}, func(p loadgen.Progress) { fmt.Println(p) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(sum)
}

// Step the offered rate on one generator: the rings are opened once, and
// each run's replies are kept apart from the others' by its run tag.
// Compiled, not run: it needs CAP_NET_RAW and a responder.
func ExampleGenerator_Run() {
	ifi, err := net.InterfaceByName("veth0")
	if err != nil {
		log.Fatal(err)
	}
	g, err := loadgen.New(ifi, &loadgen.Config{
		Spec:  loadgen.Spec{Dst: netip.MustParseAddrPort("198.18.0.2:7"), Flows: 16},
		Drain: 100 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	for _, rate := range []float64{100e3, 200e3, 400e3} {
		s, err := g.Run(context.Background(), loadgen.Load{Rate: rate, Duration: time.Second}, nil)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("offered %s: delivered %s, loss %.3f%%, p99 %s\n",
			loadgen.FormatRate(rate), loadgen.FormatRate(s.ReceivedRate), 100*s.LossRatio, loadgen.FormatDuration(s.Latency.P99))
	}
}

// The frames a generator sends, built without a network: four source
// ports times two destination ports make eight flows, and each frame
// carries a signature that the receive side reads back from the reply.
func ExampleTemplate() {
	tmpl, err := loadgen.NewTemplate(&loadgen.Spec{
		SrcMAC:   frame.MAC{0x02, 0, 0, 0, 0, 0x01},
		DstMAC:   frame.MAC{0x02, 0, 0, 0, 0, 0x02},
		Src:      netip.MustParseAddrPort("198.18.0.1:61000"),
		Dst:      netip.MustParseAddrPort("198.18.0.2:7"),
		SrcPorts: 4,
		DstPorts: 2,
		Size:     128,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d flows of %d-byte frames (%d bytes without the FCS)\n", tmpl.NumFlows(), tmpl.Size(), tmpl.Len())

	buf := make([]byte, tmpl.Len())
	n := tmpl.Write(buf, 5, loadgen.Signature{Tag: 7, Stream: 0, Seq: 42, Time: 1e18})
	var p frame.Packet
	if r := p.Decode(buf[:n]); r != frame.ReasonOK {
		log.Fatal(r)
	}
	fmt.Println("flow 5:", p.Src(buf), "->", p.Dst(buf), "checksums", p.VerifyChecksums(buf[:n]))
	sig, _ := loadgen.ParseSignature(p.Payload(buf))
	fmt.Printf("signature: tag %d, stream %d, seq %d\n", sig.Tag, sig.Stream, sig.Seq)
	// Output:
	// 8 flows of 128-byte frames (124 bytes without the FCS)
	// flow 5: 198.18.0.1:61001 -> 198.18.0.2:8 checksums ok
	// signature: tag 7, stream 0, seq 42
}
