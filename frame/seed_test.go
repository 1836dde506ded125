package frame

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// The UDP echo exchange captured in /work/shared/seeds/001 (tethereal,
// 2008): lnxclient 10.10.12.166:32787 sends "TEST" to lnxserver
// 10.10.11.66 port 7 and gets it back. The request arrived padded to the
// 60-byte Ethernet minimum with a 14-byte trailer; the reply left as 46
// bytes.
var (
	seedClientMAC = MAC{0x00, 0x05, 0x85, 0x88, 0xcc, 0xdb} // Juniper
	seedServerMAC = MAC{0x00, 0xd0, 0xb7, 0x1f, 0xfe, 0xe6} // Intel
	seedClient    = netip.MustParseAddrPort("10.10.12.166:32787")
	seedServer    = netip.MustParseAddrPort("10.10.11.66:7")

	seedRequest = mustHex(`
		00d0b71ffee6 000585 88ccdb 0800
		4500 0020 0000 4000 3e11 10d2 0a0a0ca6 0a0a0b42
		8013 0007 000c ac26 54455354
		0000000000000000000000000000`)
	seedReply = mustHex(`
		000585 88ccdb 00d0b71ffee6 0800
		4500 0020 0000 4000 4011 0ed2 0a0a0b42 0a0a0ca6
		0007 8013 000c ac26 54455354`)
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

func seedRequestSpec() *UDPSpec {
	return &UDPSpec{
		SrcMAC: seedClientMAC, DstMAC: seedServerMAC,
		Src: seedClient, Dst: seedServer,
		TTL: 62, ID: 0, DontFragment: true,
		Payload: []byte("TEST"),
	}
}

func TestSeedBuild(t *testing.T) {
	buf := make([]byte, 128)
	n, err := BuildUDP(buf, seedRequestSpec())
	if err != nil {
		t.Fatal(err)
	}
	if want := seedRequest[:46]; !bytes.Equal(buf[:n], want) {
		t.Errorf("request:\n got %x\nwant %x", buf[:n], want)
	}
	if n := PadEthernet(buf, n); !bytes.Equal(buf[:n], seedRequest) {
		t.Errorf("padded request:\n got %x\nwant %x", buf[:n], seedRequest)
	}

	n, err = BuildUDP(buf, &UDPSpec{
		SrcMAC: seedServerMAC, DstMAC: seedClientMAC,
		Src: seedServer, Dst: seedClient,
		TTL: 64, DontFragment: true, Payload: []byte("TEST"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:n], seedReply) {
		t.Errorf("reply:\n got %x\nwant %x", buf[:n], seedReply)
	}
}

func TestSeedDecode(t *testing.T) {
	var p Packet
	if r := p.Decode(seedRequest); r != ReasonOK {
		t.Fatalf("Decode = %v", r)
	}
	if got := p.Src(seedRequest); got != seedClient {
		t.Errorf("Src = %v, want %v", got, seedClient)
	}
	if got := p.Dst(seedRequest); got != seedServer {
		t.Errorf("Dst = %v, want %v", got, seedServer)
	}
	if p.Len() != 46 || p.Flags&FlagPadded == 0 {
		t.Errorf("Len = %d, flags %b; want 46 and padded (IP total length bounds the datagram)", p.Len(), p.Flags)
	}
	if got := string(p.Payload(seedRequest)); got != "TEST" {
		t.Errorf("Payload = %q", got)
	}
	ip := p.IPv4(seedRequest)
	if ip.TTL() != 62 || !ip.DontFragment() || ip.MoreFragments() || ip.ID() != 0 || ip.Checksum() != 0x10d2 {
		t.Errorf("IPv4 fields: ttl %d df %v mf %v id %d cksum %#x", ip.TTL(), ip.DontFragment(), ip.MoreFragments(), ip.ID(), ip.Checksum())
	}
	u := p.UDP(seedRequest)
	if u.Length() != 12 || u.Checksum() != 0xac26 {
		t.Errorf("UDP length %d checksum %#x", u.Length(), u.Checksum())
	}
	if r := p.VerifyChecksums(seedRequest); r != ReasonOK {
		t.Errorf("VerifyChecksums = %v", r)
	}
	e := p.Ethernet(seedRequest)
	if e.Source() != seedClientMAC || e.Destination() != seedServerMAC {
		t.Errorf("MACs %v -> %v", e.Source(), e.Destination())
	}
}

func TestSeedReplyInPlace(t *testing.T) {
	f := bytes.Clone(seedRequest)
	var p Packet
	if r := p.Decode(f); r != ReasonOK {
		t.Fatalf("Decode = %v", r)
	}
	n, err := ReplyInPlace(f, &p, 64)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f[:n], seedReply) {
		t.Errorf("reply:\n got %x\nwant %x", f[:n], seedReply)
	}
	var q Packet
	if r := q.Decode(f[:n]); r != ReasonOK {
		t.Fatalf("Decode(reply) = %v", r)
	}
	if r := q.VerifyChecksums(f[:n]); r != ReasonOK {
		t.Errorf("reply checksums: %v", r)
	}
}
