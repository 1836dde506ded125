package xdp

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// TestInstructionsAssemble checks, without privileges, that every program
// variant assembles: each jump finds its label and each map reference is
// one of the maps the loader defines.
func TestInstructionsAssemble(t *testing.T) {
	for _, tc := range []struct {
		name  string
		insns asm.Instructions
		maps  []string
	}{
		{"steer", steerInstructions(false), []string{ownerMapName, addrsMapName, portsMapName, statsMapName, xsksMapName}},
		{"steer-vlan", steerInstructions(true), []string{ownerMapName, addrsMapName, portsMapName, statsMapName, xsksMapName}},
		{"live", liveInstructions(3, 34, true, 40000, 1), []string{liveMapName}},
		{"live-flows-v4", liveInstructions(3, 34, true, 40000, 64), []string{liveMapName}},
		{"live-flows-v6", liveInstructions(3, 54, false, 40000, 64), []string{liveMapName}},
		{"live-stamps-v4", liveLayout{ifindex: 3, l4Off: 34, ipv4: true, base: 40000, flows: 64, seqOff: 44, seqHigh: 1 << 48, clockOff: 52, end: 60}.instructions(), []string{liveMapName}},
		{"live-stamps-v6", liveLayout{ifindex: 3, l4Off: 54, base: 40000, seqOff: 64, clockOff: 72, end: 80}.instructions(), []string{liveMapName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refs := map[string]bool{}
			for _, ins := range tc.insns {
				if r := ins.Reference(); r != "" && ins.IsLoadFromMap() {
					refs[r] = true
				}
			}
			for _, m := range tc.maps {
				if !refs[m] {
					t.Errorf("map %s is not referenced", m)
				}
				delete(refs, m)
			}
			if len(refs) > 0 {
				t.Errorf("unknown map references %v", refs)
			}
			// Map loads stay unresolved until load time; give them a
			// placeholder descriptor so that Marshal resolves the jumps.
			insns := append(asm.Instructions(nil), tc.insns...)
			for i := range insns {
				if insns[i].IsLoadFromMap() {
					insns[i] = asm.LoadMapPtr(insns[i].Dst, 1).WithSymbol(insns[i].Symbol())
				}
			}
			var buf bytes.Buffer
			if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
				t.Fatal(err)
			}
			if n := buf.Len() / asm.InstructionSize; n > 512 {
				t.Errorf("%d instructions: the program has grown beyond reason", n)
			}
		})
	}
}
