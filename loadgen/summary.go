package loadgen

import (
	"fmt"
	"strings"
	"time"

	"github.com/pktengine/pktengine/ring"
)

// Progress is a report during a run.
type Progress struct {
	Elapsed  time.Duration `json:"elapsed_ns"`
	Sent     uint64        `json:"sent"`
	Received uint64        `json:"received"`
	// TXRate and RXRate are frames per second over the last interval.
	TXRate float64 `json:"tx_rate"`
	RXRate float64 `json:"rx_rate"`
	// Loss is 1 - Received/Sent so far; replies still in flight count as
	// lost until they arrive.
	Loss float64 `json:"loss"`
	// P99 is the 99th percentile latency of the replies received in the
	// last interval.
	P99      time.Duration `json:"p99_ns"`
	SendOnly bool          `json:"send_only,omitempty"`
}

// String formats p as one terminal line.
func (p Progress) String() string {
	if p.SendOnly {
		return fmt.Sprintf("%6.1fs  sent %8s  tx %9s", p.Elapsed.Seconds(), FormatSI(float64(p.Sent)), FormatRate(p.TXRate))
	}
	return fmt.Sprintf("%6.1fs  sent %8s  recv %8s  tx %9s  rx %9s  loss %7.3f%%  p99 %s",
		p.Elapsed.Seconds(), FormatSI(float64(p.Sent)), FormatSI(float64(p.Received)),
		FormatRate(p.TXRate), FormatRate(p.RXRate), 100*p.Loss, FormatDuration(p.P99))
}

// Summary is the result of a run.
type Summary struct {
	Start time.Time `json:"start"`
	// Duration is the send phase, from the first batch to the last.
	Duration time.Duration `json:"duration_ns"`
	Size     int           `json:"size"` // frame size with FCS
	Flows    int           `json:"flows"`
	Workers  int           `json:"workers"`
	// Backend is how the frames were sent.
	Backend Backend `json:"backend"`

	// Offered is the rate asked for, frames per second (0: as fast as
	// possible); SentRate what the workers achieved.
	Offered  float64 `json:"offered_rate"`
	Sent     uint64  `json:"sent"`
	SentRate float64 `json:"sent_rate"`
	// SentBitRate is SentRate in bits per second of frames with FCS.
	SentBitRate float64 `json:"sent_bit_rate"`

	SendOnly bool `json:"send_only,omitempty"`

	// Received counts distinct replies; ReceivedRate is Received over
	// the send phase.
	Received     uint64  `json:"received"`
	ReceivedRate float64 `json:"received_rate"`
	// Lost is Sent - Received, and LossRatio Lost/Sent.
	Lost      uint64   `json:"lost"`
	LossRatio float64  `json:"loss_ratio"`
	Seq       SeqStats `json:"seq"`
	// Stale counts replies to an earlier run, Foreign frames that passed
	// the filter without a signature of ours.
	Stale   uint64 `json:"stale"`
	Foreign uint64 `json:"foreign"`
	// RingDrops counts frames the receive ring itself dropped for want
	// of room: if it is not zero, Lost overstates the loss.
	RingDrops uint64 `json:"ring_drops"`

	Latency Latency      `json:"latency"`
	TX      ring.TXStats `json:"tx"`
}

func (s *Summary) compute() {
	if d := s.Duration.Seconds(); d > 0 {
		s.SentRate = float64(s.Sent) / d
		s.ReceivedRate = float64(s.Received) / d
	}
	s.SentBitRate = s.SentRate * float64(s.Size) * 8
	if !s.SendOnly {
		s.Lost = s.Seq.Lost(s.Sent)
		if s.Sent > 0 {
			s.LossRatio = float64(s.Lost) / float64(s.Sent)
		}
	}
}

// String formats s for a terminal.
func (s *Summary) String() string {
	var b strings.Builder
	offered := "max"
	if s.Offered > 0 {
		offered = FormatRate(s.Offered)
	}
	fmt.Fprintf(&b, "sent      %d frames of %d bytes in %v over %d flow(s), %d worker(s): %s (%s), offered %s\n",
		s.Sent, s.Size, s.Duration.Round(time.Millisecond), s.Flows, s.Workers, FormatRate(s.SentRate), FormatBitRate(s.SentBitRate), offered)
	switch s.Backend {
	case BackendLive:
		fmt.Fprintf(&b, "tx live   %d BPF_PROG_RUN calls (live frames)\n", s.TX.Kicks)
	case BackendXDP:
		fmt.Fprintf(&b, "tx xdp    %d kicks, %d waits for a free frame, %d dropped by the driver\n", s.TX.Kicks, s.TX.Waits, s.TX.Dropped)
	default:
		fmt.Fprintf(&b, "tx ring   %d kicks, %d waits for a free slot, %d rejected\n", s.TX.Kicks, s.TX.Waits, s.TX.WrongFormat)
	}
	if s.SendOnly {
		return b.String()
	}
	fmt.Fprintf(&b, "received  %d replies (%s), lost %d (%.4f%%), %d duplicates, %d reordered (%d beyond the window)\n",
		s.Received, FormatRate(s.ReceivedRate), s.Lost, 100*s.LossRatio, s.Seq.Duplicates, s.Seq.Reordered, s.Seq.Late)
	if s.Stale+s.Foreign+s.RingDrops > 0 {
		fmt.Fprintf(&b, "ignored   %d stale, %d foreign; receive ring dropped %d\n", s.Stale, s.Foreign, s.RingDrops)
	}
	l := s.Latency
	fmt.Fprintf(&b, "latency   min %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (round trip, kernel RX timestamps)\n",
		FormatDuration(l.Min), FormatDuration(l.P50), FormatDuration(l.P90), FormatDuration(l.P99), FormatDuration(l.P999), FormatDuration(l.Max))
	return b.String()
}
