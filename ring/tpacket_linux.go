//go:build linux

package ring

import (
	"sync/atomic"
	"unsafe"
)

// The ownership protocol with the kernel.
//
// Every slot of a ring (a V2 frame, a V3 block, a TX frame) starts with a
// 32-bit status word that says who owns the slot. Only the owner touches
// the rest of the slot, and ownership moves only by a store to the status
// word, so each side publishes its writes with that store and observes the
// other side's with a load of it:
//
//	RX (V2 frame status, V3 block_status)
//
//	  kernel owns            kernel writes frame,      user reads frame(s),
//	  TP_STATUS_KERNEL ----> smp_wmb(), status = ----> atomic store of
//	        ^                TP_STATUS_USER|flags      TP_STATUS_KERNEL
//	        |                                                 |
//	        +-------------------------------------------------+
//
//	TX (frame status)
//
//	  TP_STATUS_AVAILABLE --> user writes frame, atomic store of
//	        ^                 TP_STATUS_SEND_REQUEST, send() kicks
//	        |                          |
//	        |                 kernel: SENDING (skb queued to the device)
//	        |                          |
//	        +---- skb freed ----------+---> WRONG_FORMAT (rejected; the
//	                                         kernel's head stays here)
//
// The Go atomics are sequentially consistent, which is at least the
// acquire/release pairing the kernel's smp_wmb()/smp_rmb() expect. This
// file and mmap below are the only places that turn ring offsets into
// pointers.

// loadStatus atomically loads the status word at off.
func loadStatus(mem []byte, off int) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[off])))
}

// storeStatus atomically stores the status word at off.
func storeStatus(mem []byte, off int, v uint32) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[off])), v)
}
