package bpf

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	xbpf "golang.org/x/net/bpf"

	"github.com/pktengine/pktengine/internal/labtest"
)

// TestFormatMatchesTcpdump prints tcpdump's own programs with our -d, -dd
// and -ddd printers and compares byte for byte (the differential test does
// -d for every corpus expression).
func TestFormatMatchesTcpdump(t *testing.T) {
	labtest.NeedTool(t, "tcpdump")
	for _, expr := range []string{"udp port 7", "inbound and vlan 10", "less 100", "ether multicast", "net 10.0.0.0/8 and tcp portrange 1-1000"} {
		prog, err := tcpdumpProgram(t, expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			flag string
			f    func(*bytes.Buffer, []xbpf.RawInstruction) error
		}{
			{"-d", func(b *bytes.Buffer, p []xbpf.RawInstruction) error { return FormatD(b, p) }},
			{"-dd", func(b *bytes.Buffer, p []xbpf.RawInstruction) error { return FormatDD(b, p) }},
			{"-ddd", func(b *bytes.Buffer, p []xbpf.RawInstruction) error { return FormatDDD(b, p) }},
		} {
			want, err := tcpdumpRun(t, p.flag, expr)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := p.f(&b, prog); err != nil {
				t.Fatal(err)
			}
			if b.String() != want {
				t.Errorf("%s %q:\n got:\n%s\nwant:\n%s", p.flag, expr, b.String(), want)
			}
		}
	}
}

// TestImage covers opcodes tcpdump's compiler does not emit for the
// corpus; the expected lines follow libpcap's bpf_image formats.
func TestImage(t *testing.T) {
	tests := []struct {
		ins  xbpf.RawInstruction
		want string
	}{
		{xbpf.RawInstruction{Op: bpfRET | bpfA}, "(007) ret      "},
		{xbpf.RawInstruction{Op: bpfRET | bpfK, K: 0xffffffff}, "(007) ret      #-1"},
		{xbpf.RawInstruction{Op: bpfMISC | bpfTAX}, "(007) tax      "},
		{xbpf.RawInstruction{Op: bpfMISC | bpfTXA}, "(007) txa      "},
		{xbpf.RawInstruction{Op: bpfJMP | bpfJA, K: 3}, "(007) ja       11"},
		{xbpf.RawInstruction{Op: bpfLDX | bpfW | bpfLEN}, "(007) ldx      #pktlen"},
		{xbpf.RawInstruction{Op: bpfLD | bpfMEM, K: 3}, "(007) ld       M[3]"},
		{xbpf.RawInstruction{Op: bpfLDX | bpfMEM, K: 4}, "(007) ldx      M[4]"},
		{xbpf.RawInstruction{Op: bpfST, K: 5}, "(007) st       M[5]"},
		{xbpf.RawInstruction{Op: bpfSTX, K: 6}, "(007) stx      M[6]"},
		{xbpf.RawInstruction{Op: bpfLD | bpfIMM, K: 255}, "(007) ld       #0xff"},
		{xbpf.RawInstruction{Op: bpfLDX | bpfIMM, K: 16}, "(007) ldx      #0x10"},
		{xbpf.RawInstruction{Op: bpfLD | bpfW | bpfIND, K: 2}, "(007) ld       [x + 2]"},
		{xbpf.RawInstruction{Op: bpfLD | bpfB | bpfIND, K: 2}, "(007) ldb      [x + 2]"},
		{xbpf.RawInstruction{Op: bpfLD | bpfW | bpfABS, K: skfAdOff + 0}, "(007) ld       [proto]"},
		{xbpf.RawInstruction{Op: bpfLD | bpfB | bpfABS, K: skfAdOff + 48}, "(007) ldb      [vlanp]"},
		{xbpf.RawInstruction{Op: bpfLD | bpfH | bpfABS, K: skfAdOff + 44}, "(007) ldh      [vlan_tci]"},
		{xbpf.RawInstruction{Op: bpfLD | bpfW | bpfABS, K: skfAdOff + 64}, "(007) ld       [-4032]"},
		{xbpf.RawInstruction{Op: bpfALU | 0x80}, "(007) neg      "},
		{xbpf.RawInstruction{Op: bpfALU | 0x00 | bpfX}, "(007) add      x"},
		{xbpf.RawInstruction{Op: bpfALU | 0x30, K: 7}, "(007) div      #7"},
		{xbpf.RawInstruction{Op: bpfALU | 0x90, K: 7}, "(007) mod      #7"},
		{xbpf.RawInstruction{Op: bpfALU | 0xa0, K: 7}, "(007) xor      #0x7"},
		{xbpf.RawInstruction{Op: bpfALU | 0xa0 | bpfX}, "(007) xor      x"},
		{xbpf.RawInstruction{Op: bpfALU | 0x60, K: 2}, "(007) lsh      #2"},
		{xbpf.RawInstruction{Op: bpfALU | 0x40, K: 2}, "(007) or       #0x2"},
		{xbpf.RawInstruction{Op: bpfJMP | bpfJGT | bpfX, Jt: 1, Jf: 2}, "(007) jgt      x                jt 9\tjf 10"},
		{xbpf.RawInstruction{Op: bpfJMP | bpfJSET, K: 0x1fff, Jt: 0, Jf: 255}, "(007) jset     #0x1fff          jt 8\tjf 263"},
		{xbpf.RawInstruction{Op: bpfALU | 0x80 | bpfX}, "(007) unimp    0x8c"},
		{xbpf.RawInstruction{Op: 0x1ff}, "(007) unimp    0x1ff"},
		// libpcap picks the jump layout from the class alone.
		{xbpf.RawInstruction{Op: bpfJMP | 0x50}, "(007) unimp    0x55             jt 8\tjf 8"},
	}
	for _, tt := range tests {
		if got := image(tt.ins, 7); got != tt.want {
			t.Errorf("%#v:\n got %q\nwant %q", tt.ins, got, tt.want)
		}
	}
}

func TestParseDDD(t *testing.T) {
	prog := compileRaw(t, "udp port 53", nil)
	var b bytes.Buffer
	FormatDDD(&b, prog)
	back, err := parseDDD(&b)
	if err != nil {
		t.Fatal(err)
	}
	if formatD(back) != formatD(prog) {
		t.Errorf("round trip changed the program")
	}
	for _, bad := range []string{"", "2\n1 2 3 4\n", "1\n65536 0 0 0\n", "5000\n"} {
		if _, err := parseDDD(strings.NewReader(bad)); err == nil {
			t.Errorf("parseDDD(%q) succeeded", bad)
		}
	}
}

// parseDDD reads the "tcpdump -ddd" format: tcpdump's programs, and the
// golden files of the hand-written ones.
func parseDDD(r io.Reader) ([]xbpf.RawInstruction, error) {
	var n int
	if _, err := fmt.Fscan(r, &n); err != nil {
		return nil, fmt.Errorf("bpf: reading instruction count: %w", err)
	}
	if n < 0 || n > MaxInstructions {
		return nil, fmt.Errorf("bpf: instruction count %d out of range", n)
	}
	prog := make([]xbpf.RawInstruction, n)
	for i := range prog {
		var op, jt, jf, k uint64
		if _, err := fmt.Fscan(r, &op, &jt, &jf, &k); err != nil {
			return nil, fmt.Errorf("bpf: reading instruction %d: %w", i, err)
		}
		if op > 0xffff || jt > 0xff || jf > 0xff || k > 0xffffffff {
			return nil, fmt.Errorf("bpf: instruction %d out of range", i)
		}
		prog[i] = xbpf.RawInstruction{Op: uint16(op), Jt: uint8(jt), Jf: uint8(jf), K: uint32(k)}
	}
	return prog, nil
}
