package loadgen

import "encoding/binary"

// SeqBits is the width of the sequence number in the signature: 2^48
// frames last 9 years at a million frames a second.
const SeqBits = 48

const seqMask = 1<<SeqBits - 1

// Signature is what the generator writes at the start of every payload, and
// finds again in the replies:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Run tag            |            Stream             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Sequence number (48 bits)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+            Send time, ns since the Unix epoch (64 bits)       +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The run tag changes with every run, so that a late reply to an earlier
// run is not taken for one of this run. The stream is the sending worker;
// each has its own sequence numbers, from 0.
type Signature struct {
	Tag    uint16
	Stream uint16
	Seq    uint64 // low SeqBits bits
	Time   int64  // nanoseconds since the Unix epoch
}

// word returns stream and sequence number as they are packed.
func (s *Signature) word() uint64 { return uint64(s.Stream)<<SeqBits | s.Seq&seqMask }

// Put writes s into the first SignatureLen bytes of b.
func (s *Signature) Put(b []byte) {
	b = b[:SignatureLen]
	binary.BigEndian.PutUint16(b[0:], s.Tag)
	binary.BigEndian.PutUint64(b[2:], s.word())
	binary.BigEndian.PutUint64(b[10:], uint64(s.Time))
}

// sum returns the ones'-complement contribution of the signature's nine
// 16-bit words, unfolded: a 32-bit big-endian value hi<<16|lo adds hi+lo,
// since 2^16 ≡ 1 modulo 2^16-1.
func (s *Signature) sum() uint64 {
	w, t := s.word(), uint64(s.Time)
	return uint64(s.Tag) + w>>32 + w&0xFFFFFFFF + t>>32 + t&0xFFFFFFFF
}

// ParseSignature reads a signature from the start of a payload. ok is
// false if the payload is too short.
func ParseSignature(payload []byte) (s Signature, ok bool) {
	if len(payload) < SignatureLen {
		return s, false
	}
	s.Tag = binary.BigEndian.Uint16(payload[0:])
	w := binary.BigEndian.Uint64(payload[2:])
	s.Stream, s.Seq = uint16(w>>SeqBits), w&seqMask
	s.Time = int64(binary.BigEndian.Uint64(payload[10:]))
	return s, true
}
