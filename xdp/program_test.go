package xdp

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/cilium/ebpf/asm"
)

var steerMaps = []string{ownerMapName, addrsMapName, portsMapName, statsMapName, xsksMapName}

// programVariants are the program variants the tests build: the maps each
// must reference, and the SHA-256 of its bytecode (see
// TestInstructionsUnchanged).
var programVariants = []struct {
	name  string
	insns asm.Instructions
	maps  []string
	sum   string
}{
	{"steer", steerInstructions(false), steerMaps, "3418be11a312c93a6851b2bf820b8d23772bab98739ec6131efbbddcac3d956a"},
	{"steer-vlan", steerInstructions(true), steerMaps, "5cd171e1fe202c0872eb9a4a24361be7c76961c8549b8a663236b3b769ac7f41"},
	{"live", liveInstructions(3, 34, true, 40000, 1), []string{liveMapName}, "66a8c9acfd87669d0613f55812f8373005f84a82ad0eda16031bb1116d175e76"},
	{"live-flows-v4", liveInstructions(3, 34, true, 40000, 64), []string{liveMapName}, "b4ef7e270b5382922a1a590e4037a68a462ea5f7b89ce361eb4bd22fffb71c18"},
	{"live-flows-v6", liveInstructions(3, 54, false, 40000, 64), []string{liveMapName}, "0be6064aa466af52889ed371444c083bbb80fc4119899d82752e42cc488a32c2"},
	{"live-stamps-v4", liveLayout{ifindex: 3, l4Off: 34, ipv4: true, base: 40000, flows: 64, seqOff: 44, seqHigh: 1 << 48, clockOff: 52, end: 60}.instructions(), []string{liveMapName}, "1f4fa0b68b678335dddf14617da35e424f8fe3124cbc53ab871a5e6fdedac908"},
	{"live-stamps-v6", liveLayout{ifindex: 3, l4Off: 54, base: 40000, seqOff: 64, clockOff: 72, end: 80}.instructions(), []string{liveMapName}, "59c3c53fdd9799a79b0678e6e2536fa65253e880e670017295535d304cbff700"},
	{"live-seq-v4", liveLayout{ifindex: 5, l4Off: 34, ipv4: true, base: 1000, seqOff: 44, seqHigh: 7 << 40, seqBits: 40, end: 52}.instructions(), []string{liveMapName}, "d96a3c3816bec44c1c1190071d8538ce5081be6f8ddce33a85c57807e6ebd395"},
	{"live-clock-v4", liveLayout{ifindex: 5, l4Off: 34, ipv4: true, base: 1000, flows: 8, clockOff: 44, end: 52}.instructions(), []string{liveMapName}, "f96adcfae492a42b894047341fccc4d7df1310f8f840ab1048a74b887a84ebf7"},
}

// marshal returns the bytecode of insns. Map loads stay unresolved until
// load time; each gets a placeholder descriptor, the one fd returns for
// its map's name, so that Marshal resolves the jumps.
func marshal(t *testing.T, insns asm.Instructions, fd func(mapName string) int) []byte {
	t.Helper()
	insns = slices.Clone(insns)
	for i := range insns {
		if insns[i].IsLoadFromMap() {
			insns[i] = asm.LoadMapPtr(insns[i].Dst, fd(insns[i].Reference())).WithSymbol(insns[i].Symbol())
		}
	}
	var buf bytes.Buffer
	if err := insns.Marshal(&buf, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestInstructionsAssemble checks, without privileges, that every program
// variant assembles: each jump finds its label and each map reference is
// one of the maps the loader defines.
func TestInstructionsAssemble(t *testing.T) {
	for _, tc := range programVariants {
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
			code := marshal(t, tc.insns, func(string) int { return 1 })
			if n := len(code) / asm.InstructionSize; n > 512 {
				t.Errorf("%d instructions: the program has grown beyond reason", n)
			}
		})
	}
}

// TestInstructionsUnchanged pins the bytecode of each variant, every map
// reference given a placeholder descriptor of its own (the values are
// those of a little-endian host, as be16 and ne32 make them). A change to
// how the builders are written (a helper that emits a repeated sequence,
// say) must leave the sums as they are; a change to what a program does
// changes its sum, and then the new one, which the failure prints, goes
// into programVariants.
func TestInstructionsUnchanged(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the sums are those of a little-endian host")
	}
	for _, tc := range programVariants {
		t.Run(tc.name, func(t *testing.T) {
			allMaps := append(slices.Clone(steerMaps), liveMapName)
			code := marshal(t, tc.insns, func(name string) int { return 10 + slices.Index(allMaps, name) })
			sum := sha256.Sum256(code)
			if got := hex.EncodeToString(sum[:]); got != tc.sum {
				t.Errorf("bytecode changed: sha256 %s, want %s", got, tc.sum)
			}
		})
	}
}
