//go:build !(amd64 || arm64 || ppc64le || loong64) || purego

package proto

// checksum is Checksum on architectures without a fast path, and with the
// purego build tag everywhere.
func checksum(b []byte, initial uint16) uint16 {
	return Fold(sumPortable(b, uint64(initial)))
}
