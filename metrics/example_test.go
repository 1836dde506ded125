package metrics_test

import (
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"

	"github.com/pktengine/pktengine/engine"
	"github.com/pktengine/pktengine/metrics"
)

// An engine's metrics for Prometheus, and its status for people on exit.
func ExampleHandler() {
	ifi, err := net.InterfaceByName("eth1")
	if err != nil {
		log.Fatal(err)
	}
	e, err := engine.Open(ifi, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		e.Close() // then the status has every frame the workers took
		st := e.Status()
		metrics.WriteStatus(os.Stdout, &st)
	}()
	if _, err := e.HandleService(netip.AddrPortFrom(netip.Addr{}, engine.Echo.Port()), engine.Echo); err != nil {
		log.Fatal(err)
	}
	http.Handle("/metrics", metrics.Handler(e))
	log.Fatal(http.ListenAndServe("127.0.0.1:9477", nil))
}
