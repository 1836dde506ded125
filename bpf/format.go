package bpf

import (
	"bufio"
	"fmt"
	"io"

	xbpf "golang.org/x/net/bpf"
)

// Classic BPF opcode fields (linux/bpf_common.h, pcap/bpf.h).
const (
	bpfLD   = 0x00
	bpfLDX  = 0x01
	bpfST   = 0x02
	bpfSTX  = 0x03
	bpfALU  = 0x04
	bpfJMP  = 0x05
	bpfRET  = 0x06
	bpfMISC = 0x07

	bpfW = 0x00
	bpfH = 0x08
	bpfB = 0x10

	bpfIMM = 0x00
	bpfABS = 0x20
	bpfIND = 0x40
	bpfMEM = 0x60
	bpfLEN = 0x80
	bpfMSH = 0xa0

	bpfK = 0x00
	bpfX = 0x08
	bpfA = 0x10

	bpfJA   = 0x00
	bpfJEQ  = 0x10
	bpfJGT  = 0x20
	bpfJGE  = 0x30
	bpfJSET = 0x40

	bpfTAX = 0x00
	bpfTXA = 0x80
)

// ancillaryNames are libpcap's symbolic names for Linux SKF_AD_* offsets.
var ancillaryNames = map[uint32]string{
	0: "proto", 4: "type", 8: "ifidx", 12: "nla", 16: "nlan", 20: "mark",
	24: "queue", 28: "hatype", 32: "rxhash", 36: "cpu", 40: "xor_x",
	44: "vlan_tci", 48: "vlanp", 52: "poff", 56: "random", 60: "vlan_tpid",
}

var aluNames = [16]string{"add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor"}

// FormatD writes prog as "tcpdump -d" does (libpcap's bpf_image), one line
// per instruction, byte for byte.
func FormatD(w io.Writer, prog []xbpf.RawInstruction) error {
	bw := bufio.NewWriter(w)
	for i, ins := range prog {
		bw.WriteString(image(ins, i))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// FormatDD writes prog as a C array body, as "tcpdump -dd" does.
func FormatDD(w io.Writer, prog []xbpf.RawInstruction) error {
	bw := bufio.NewWriter(w)
	for _, ins := range prog {
		fmt.Fprintf(bw, "{ 0x%x, %d, %d, 0x%08x },\n", ins.Op, ins.Jt, ins.Jf, ins.K)
	}
	return bw.Flush()
}

// FormatDDD writes the instruction count and then each instruction as
// decimal numbers, as "tcpdump -ddd" does.
func FormatDDD(w io.Writer, prog []xbpf.RawInstruction) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d\n", len(prog))
	for _, ins := range prog {
		fmt.Fprintf(bw, "%d %d %d %d\n", ins.Op, ins.Jt, ins.Jf, ins.K)
	}
	return bw.Flush()
}

// image renders instruction number n as one line of "tcpdump -d".
func image(ins xbpf.RawInstruction, n int) string {
	op, operand := imageParts(ins, n)
	if ins.Op&0x07 == bpfJMP && ins.Op&0xf0 != bpfJA {
		return fmt.Sprintf("(%03d) %-8s %-16s jt %d\tjf %d", n, op, operand, n+1+int(ins.Jt), n+1+int(ins.Jf))
	}
	return fmt.Sprintf("(%03d) %-8s %s", n, op, operand)
}

func imageParts(ins xbpf.RawInstruction, n int) (op, operand string) {
	k := ins.K
	sk := int32(k) // libpcap prints these with %d
	absOperand := func() string {
		if k >= skfAdOff {
			if name, ok := ancillaryNames[k-skfAdOff]; ok {
				return "[" + name + "]"
			}
		}
		return fmt.Sprintf("[%d]", sk)
	}
	code := ins.Op
	switch code {
	case bpfRET | bpfK:
		return "ret", fmt.Sprintf("#%d", sk)
	case bpfRET | bpfA:
		return "ret", ""
	case bpfLD | bpfW | bpfABS:
		return "ld", absOperand()
	case bpfLD | bpfH | bpfABS:
		return "ldh", absOperand()
	case bpfLD | bpfB | bpfABS:
		return "ldb", absOperand()
	case bpfLD | bpfW | bpfLEN:
		return "ld", "#pktlen"
	case bpfLDX | bpfW | bpfLEN:
		return "ldx", "#pktlen"
	case bpfLD | bpfW | bpfIND:
		return "ld", fmt.Sprintf("[x + %d]", sk)
	case bpfLD | bpfH | bpfIND:
		return "ldh", fmt.Sprintf("[x + %d]", sk)
	case bpfLD | bpfB | bpfIND:
		return "ldb", fmt.Sprintf("[x + %d]", sk)
	case bpfLD | bpfIMM:
		return "ld", fmt.Sprintf("#0x%x", k)
	case bpfLDX | bpfIMM:
		return "ldx", fmt.Sprintf("#0x%x", k)
	case bpfLDX | bpfMSH | bpfB:
		return "ldxb", fmt.Sprintf("4*([%d]&0xf)", sk)
	case bpfLD | bpfMEM:
		return "ld", fmt.Sprintf("M[%d]", sk)
	case bpfLDX | bpfMEM:
		return "ldx", fmt.Sprintf("M[%d]", sk)
	case bpfST:
		return "st", fmt.Sprintf("M[%d]", sk)
	case bpfSTX:
		return "stx", fmt.Sprintf("M[%d]", sk)
	case bpfJMP | bpfJA:
		return "ja", fmt.Sprintf("%d", int32(uint32(n)+1+k))
	case bpfMISC | bpfTAX:
		return "tax", ""
	case bpfMISC | bpfTXA:
		return "txa", ""
	case bpfALU | 0x80: // BPF_NEG
		return "neg", ""
	}
	if code > 0xff {
		return "unimp", fmt.Sprintf("0x%x", code)
	}
	switch code & 0x07 {
	case bpfJMP:
		var name string
		switch code & 0xf0 {
		case bpfJGT:
			name = "jgt"
		case bpfJGE:
			name = "jge"
		case bpfJEQ:
			name = "jeq"
		case bpfJSET:
			name = "jset"
		}
		if name != "" && code&^0xf8 == bpfJMP {
			if code&bpfX != 0 {
				return name, "x"
			}
			return name, fmt.Sprintf("#0x%x", k)
		}
	case bpfALU:
		i := int(code >> 4)
		if code&^0xf8 == bpfALU && i < len(aluNames) && aluNames[i] != "" && i != 8 {
			name := aluNames[i]
			if code&bpfX != 0 {
				return name, "x"
			}
			switch name {
			case "and", "or", "xor":
				return name, fmt.Sprintf("#0x%x", k)
			}
			return name, fmt.Sprintf("#%d", sk)
		}
	}
	return "unimp", fmt.Sprintf("0x%x", code)
}
