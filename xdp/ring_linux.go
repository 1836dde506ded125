//go:build linux

package xdp

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// xskRing is one of the four single-producer single-consumer rings that an
// AF_XDP socket shares with the kernel. The producer and consumer indexes
// live in the mapping and run freely (they wrap at 2^32); an entry is at
// index & mask. Each side keeps a cached copy of the other side's index
// and reads the shared one only when the cache says the ring is full or
// empty, the libxdp way: most calls touch no shared cache line.
//
// The indexes are read and written with sync/atomic (sequentially
// consistent, which is stronger than the kernel's acquire/release pairs),
// as cilium/ebpf's ringbuf reads its shared positions.
type xskRing struct {
	mem   []byte
	prod  *atomic.Uint32
	cons  *atomic.Uint32
	flags *atomic.Uint32
	mask  uint32
	size  uint32

	// cachedProd and cachedCons: for a ring user space produces to (fill,
	// TX), cachedProd is its own index, ahead of the shared one until
	// submit, and cachedCons the last kernel index it read. For a ring it
	// consumes (RX, completion), the other way round.
	cachedProd uint32
	cachedCons uint32
}

// addrRing is a fill or completion ring: entries are UMEM addresses.
type addrRing struct {
	xskRing
	addrs []uint64
}

// descRing is an RX or TX ring: entries are struct xdp_desc.
type descRing struct {
	xskRing
	descs []unix.XDPDesc
}

// mapRing maps a ring of size entries of entrySize bytes at the page
// offset pgoff, with the layout XDP_MMAP_OFFSETS gave.
func mapRing(fd int, off *unix.XDPRingOffset, size uint32, entrySize uintptr, pgoff int64) (xskRing, unsafe.Pointer, error) {
	n := int(off.Desc) + int(size)*int(entrySize)
	mem, err := unix.Mmap(fd, pgoff, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return xskRing{}, nil, os.NewSyscallError("mmap", err)
	}
	r := xskRing{
		mem:   mem,
		prod:  (*atomic.Uint32)(unsafe.Pointer(&mem[off.Producer])),
		cons:  (*atomic.Uint32)(unsafe.Pointer(&mem[off.Consumer])),
		flags: (*atomic.Uint32)(unsafe.Pointer(&mem[off.Flags])),
		mask:  size - 1,
		size:  size,
	}
	r.cachedProd = r.prod.Load()
	r.cachedCons = r.cons.Load()
	return r, unsafe.Pointer(&mem[off.Desc]), nil
}

func mapAddrRing(fd int, off *unix.XDPRingOffset, size uint32, pgoff int64) (*addrRing, error) {
	r, base, err := mapRing(fd, off, size, 8, pgoff)
	if err != nil {
		return nil, err
	}
	// A producer ring starts with every entry free.
	return &addrRing{xskRing: r, addrs: unsafe.Slice((*uint64)(base), size)}, nil
}

func mapDescRing(fd int, off *unix.XDPRingOffset, size uint32, pgoff int64) (*descRing, error) {
	r, base, err := mapRing(fd, off, size, unsafe.Sizeof(unix.XDPDesc{}), pgoff)
	if err != nil {
		return nil, err
	}
	return &descRing{xskRing: r, descs: unsafe.Slice((*unix.XDPDesc)(base), size)}, nil
}

func (r *xskRing) unmap() error {
	if r == nil || r.mem == nil {
		return nil
	}
	mem := r.mem
	r.mem = nil
	return os.NewSyscallError("munmap", unix.Munmap(mem))
}

// free returns how many entries a producer may write, reading the kernel's
// consumer index only if the cached one leaves fewer than want.
func (r *xskRing) free(want uint32) uint32 {
	f := r.size - (r.cachedProd - r.cachedCons)
	if f >= want {
		return f
	}
	r.cachedCons = r.cons.Load()
	return r.size - (r.cachedProd - r.cachedCons)
}

// submit publishes the entries written since the last submit.
func (r *xskRing) submit() { r.prod.Store(r.cachedProd) }

// pending reports whether a producer ring holds published entries that the
// kernel has not consumed yet.
func (r *xskRing) pending() bool { return r.cons.Load() != r.prod.Load() }

// available returns how many entries a consumer may read, reading the
// kernel's producer index only if the cached one shows fewer than want.
func (r *xskRing) available(want uint32) uint32 {
	a := r.cachedProd - r.cachedCons
	if a >= want {
		return a
	}
	r.cachedProd = r.prod.Load()
	return r.cachedProd - r.cachedCons
}

// consume releases n entries to the kernel.
func (r *xskRing) consume(n uint32) {
	r.cachedCons += n
	r.cons.Store(r.cachedCons)
}

// needWakeup reports XDP_RING_NEED_WAKEUP: the kernel waits for a system
// call before it looks at the ring again.
func (r *xskRing) needWakeup() bool { return r.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0 }
