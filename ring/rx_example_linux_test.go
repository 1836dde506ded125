package ring_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"github.com/pktengine/pktengine/ring"
)

// A receive loop that reuses one Batch: ReadInto releases the previous
// frames before it refills the batch, so the loop allocates nothing.
func ExampleRX_ReadInto() {
	ifi, err := net.InterfaceByName("veth0")
	if err != nil {
		log.Fatal(err)
	}
	rx, err := ring.NewRX(ifi, &ring.RXConfig{IgnoreOutgoing: true})
	if err != nil {
		log.Fatal(err) // EPERM names CAP_NET_RAW
	}
	defer rx.Close()

	ctx := context.Background()
	var b ring.Batch
	for {
		if err := rx.ReadInto(ctx, &b); err != nil {
			log.Fatal(err)
		}
		for data, m := range b.All() {
			if m.Status.ChecksumPartial() {
				continue // a local sender's partial checksum: don't verify it
			}
			fmt.Println(len(data), m.Type)
		}
	}
}

// Frames are built in place in the Transmitter's buffer and leave in
// batches.
func ExampleTransmitter() {
	ifi, err := net.InterfaceByName("veth0")
	if err != nil {
		log.Fatal(err)
	}
	tx, err := ring.NewTransmitter(ifi, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Close()

	ctx := context.Background()
	for i := range 64 {
		buf, err := tx.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		n := buildFrameInto(buf, i)
		if err := tx.Commit(n); err != nil {
			log.Fatal(err)
		}
	}
	if err := tx.Flush(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", tx.Stats())
}

// buildFrameInto stands for a frame builder such as frame.BuildUDP.
func buildFrameInto(buf []byte, i int) int { return 60 }
