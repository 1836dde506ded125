package bpf

import (
	"reflect"
	"strings"
	"testing"

	xbpf "golang.org/x/net/bpf"
)

func TestAssembler(t *testing.T) {
	// if A == 1 goto one; if A == 2 goto far (300 instructions ahead);
	// return 3. one: return 1. far: return 2.
	a := newAssembler()
	a.emit(xbpf.LoadAbsolute{Off: 0, Size: 1})
	a.jump(xbpf.JumpEqual, 1, "one", "")
	a.jumpFar(xbpf.JumpEqual, 2, "far")
	a.emit(xbpf.RetConstant{Val: 3})
	a.label("one")
	a.emit(xbpf.RetConstant{Val: 1})
	for range 300 {
		a.emit(xbpf.RetConstant{Val: 9})
	}
	a.label("far")
	a.emit(xbpf.RetConstant{Val: 2})
	prog, err := a.program()
	if err != nil {
		t.Fatal(err)
	}
	want := []xbpf.Instruction{
		xbpf.LoadAbsolute{Off: 0, Size: 1},
		xbpf.JumpIf{Cond: xbpf.JumpEqual, Val: 1, SkipTrue: 3},
		xbpf.JumpIf{Cond: xbpf.JumpEqual, Val: 2, SkipFalse: 1},
		xbpf.Jump{Skip: 302},
		xbpf.RetConstant{Val: 3},
		xbpf.RetConstant{Val: 1},
	}
	if !reflect.DeepEqual(prog[:len(want)], want) {
		t.Errorf("program starts\n%v\nwant\n%v", prog[:len(want)], want)
	}
	vm, err := xbpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	for in, out := range map[byte]int{0: 3, 1: 1, 2: 2} {
		if got, err := vm.Run([]byte{in}); err != nil || got != out {
			t.Errorf("A = %d: returned %d, %v; want %d", in, got, err, out)
		}
	}
}

func TestAssemblerErrors(t *testing.T) {
	ret := xbpf.RetConstant{Val: 1}
	for _, tt := range []struct {
		name  string
		build func(a *assembler)
		want  string
	}{
		{"undefined label", func(a *assembler) { a.ja("nowhere"); a.emit(ret) }, `undefined label "nowhere"`},
		{"backward jump", func(a *assembler) {
			a.label("back")
			a.emit(xbpf.LoadConstant{Val: 1})
			a.jump(xbpf.JumpEqual, 1, "back", "")
			a.emit(ret)
		}, "forward only"},
		{"jump to itself", func(a *assembler) { a.label("self"); a.ja("self"); a.emit(ret) }, "forward only"},
		{"label past the end", func(a *assembler) { a.ja("end"); a.emit(ret); a.label("end") }, "past the last instruction"},
		{"label twice", func(a *assembler) { a.label("x"); a.emit(ret); a.label("x"); a.emit(ret) }, `label "x" defined twice`},
		{"near jump too far", func(a *assembler) {
			a.jump(xbpf.JumpEqual, 1, "", "far")
			for range 256 {
				a.emit(ret)
			}
			a.label("far")
			a.emit(ret)
		}, `cannot reach label "far", 256 instructions ahead (at most 255)`},
		{"no return at the end", func(a *assembler) { a.emit(ret, xbpf.TAX{}) }, "not a return"},
		{"empty", func(*assembler) {}, "empty program"},
		{"too long", func(a *assembler) {
			for range MaxInstructions + 1 {
				a.emit(ret)
			}
		}, "more than the kernel's limit"},
	} {
		a := newAssembler()
		tt.build(a)
		_, err := a.assemble()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	// A near jump of exactly 255 is fine.
	a := newAssembler()
	a.jump(xbpf.JumpEqual, 1, "", "edge")
	for range 255 {
		a.emit(ret)
	}
	a.label("edge")
	a.emit(ret)
	if _, err := a.assemble(); err != nil {
		t.Errorf("a jump of 255: %v", err)
	}
}

func TestDropAll(t *testing.T) {
	prog, ok := xbpf.Disassemble(DropAll())
	if !ok || len(prog) != 1 || prog[0] != (xbpf.RetConstant{Val: 0}) {
		t.Errorf("DropAll() = %v", prog)
	}
}
