package frame

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestVerifyUDPChecksumPartial: a full checksum verifies; the pseudo-header
// sum a local sender leaves is taken for a partial checksum and completed
// by FillUDPChecksum into the full one; any other wrong checksum is bad.
func TestVerifyUDPChecksumPartial(t *testing.T) {
	tested := 0
	for name, s := range udpSpecs() {
		f := mustBuild(t, s)
		var p Packet
		if p.Decode(f) != ReasonOK || p.IsFragment() {
			continue
		}
		u := p.UDP(f)
		full := u.Checksum()
		if full == 0 {
			continue // IPv4 without a checksum: nothing to verify
		}
		if r, partial := p.VerifyUDPChecksumPartial(f); r != ReasonOK || partial {
			t.Errorf("%s: full checksum: %v, partial %v", name, r, partial)
		}
		pseudo := p.udpPseudoHeaderSum(f)
		u.SetChecksum(pseudo)
		if full == pseudo {
			continue // the one-in-65536 case: nothing to tell apart
		}
		if r, partial := p.VerifyUDPChecksumPartial(f); r != ReasonOK || !partial {
			t.Errorf("%s: partial checksum %#04x: %v, partial %v", name, pseudo, r, partial)
		}
		if r := p.VerifyUDPChecksum(f); r != ReasonUDPBadChecksum {
			t.Errorf("%s: VerifyUDPChecksum on a partial checksum: %v", name, r)
		}
		p.FillUDPChecksum(f)
		if u.Checksum() != full {
			t.Errorf("%s: completed %#04x, want %#04x", name, u.Checksum(), full)
		}
		// Any other wrong value is a bad checksum.
		for _, bad := range []uint16{pseudo + 1, ^pseudo, full ^ 0x8000} {
			if bad == full || bad == pseudo || bad == 0 {
				continue
			}
			u.SetChecksum(bad)
			if r, partial := p.VerifyUDPChecksumPartial(f); r != ReasonUDPBadChecksum || partial {
				t.Errorf("%s: checksum %#04x (full %#04x, pseudo %#04x): %v, partial %v", name, bad, full, pseudo, r, partial)
			}
		}
		u.SetChecksum(full)
		tested++
	}
	if tested < 4 {
		t.Errorf("only %d datagrams tested", tested)
	}
}

// TestPartialChecksumOdds measures the price of the rule: over random
// datagrams, how often a valid full checksum equals the pseudo-header sum
// (a corruption of such a datagram's payload would go unnoticed). It must
// be near 1 in 65536, not more.
func TestPartialChecksumOdds(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	spec := udpSpecs()["v6/vlan2/1k"]
	f := mustBuild(t, spec)
	var p Packet
	if p.Decode(f) != ReasonOK {
		t.Fatal("decode")
	}
	payload := f[p.PayloadOff:p.L4End]
	if len(payload) < 8 {
		t.Fatalf("%d-byte payload", len(payload))
	}
	const n = 1 << 20
	hits := 0
	for range n {
		binary.LittleEndian.PutUint64(payload[:8], rng.Uint64())
		p.FillUDPChecksum(f)
		if p.IsUDPChecksumPartial(f) {
			hits++
		}
	}
	t.Logf("%d of %d random datagrams have a full checksum equal to the pseudo-header sum (expect about %d)", hits, n, n/65536)
	if hits > 4*n/65536+8 {
		t.Errorf("%d of %d: far more than one in 65536", hits, n)
	}
}

func TestVerifyUDPChecksumPartialAllocs(t *testing.T) {
	f := mustBuild(t, udpSpecs()["v6/vlan2/1k"])
	var p Packet
	p.Decode(f)
	p.UDP(f).SetChecksum(p.udpPseudoHeaderSum(f))
	if n := testing.AllocsPerRun(100, func() { p.VerifyUDPChecksumPartial(f) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
