package engine

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/pktengine/pktengine/ring"
)

// trafficRig is a rig that has handled four frames: an echo request, a
// datagram for a queued port, one for an unbound port and an ARP request.
func trafficRig(t *testing.T) *testRig {
	r := newRig(t, nil)
	r.e.HandleService(ap(netip.Addr{}, 7), Echo)
	r.e.Bind(ap(owned4, 5000))
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 7), []byte("a")), ring.Meta{})
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 5000), []byte("b")), ring.Meta{})
	r.one(udpFrame(t, ap(peer4, 1), ap(owned4, 5001), []byte("c")), ring.Meta{})
	r.one(arpRequest(t, peer4, owned4), ring.Meta{})
	return r
}

func TestCountersJSON(t *testing.T) {
	r := trafficRig(t)
	c := r.e.Counters()
	c.LinkDowns, c.LinkUps, c.GuardTotalLimited = 3, 2, 1
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Outcomes":{"arp":1,"delivered":2,"no-port":1}`) {
		t.Errorf("outcomes in JSON: %s", b)
	}
	for _, want := range []string{`"LinkDowns":3`, `"LinkUps":2`, `"GuardTotalLimited":1`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s: %s", want, b)
		}
	}
	var back Counters
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != c {
		t.Errorf("round trip changed the counters:\n%+v\n%+v", back, c)
	}
	if err := json.Unmarshal([]byte(`{"Outcomes":{"bogus":1}}`), &back); err == nil {
		t.Error("unknown outcome accepted")
	}
}
