package engine

import (
	"fmt"
	"strings"
)

// Service is one of the classic UDP services an engine can run inline.
type Service uint8

const (
	Echo    Service = iota + 1 // RFC 862: sends back what it receives
	Discard                    // RFC 863: receives and says nothing
	Daytime                    // RFC 867: the date and time, as text
	QOTD                       // RFC 865: a quote of the day
	Chargen                    // RFC 864: 0 to 512 characters of a rotating pattern
)

var serviceTable = [...]struct {
	name string
	port uint16
	// amplifies: the answer can be larger than the question, which is
	// what makes a service worth abusing for reflection.
	amplifies bool
}{
	Echo:    {"echo", 7, false},
	Discard: {"discard", 9, false},
	Daytime: {"daytime", 13, true},
	QOTD:    {"qotd", 17, true},
	Chargen: {"chargen", 19, true},
}

// Services lists the built-in services.
func Services() []Service { return []Service{Echo, Discard, Daytime, QOTD, Chargen} }

// String returns the service's name as in /etc/services ("echo"), or ""
// for the zero Service.
func (s Service) String() string {
	if s == 0 {
		return ""
	}
	if int(s) < len(serviceTable) {
		return serviceTable[s].name
	}
	return fmt.Sprintf("Service(%d)", uint8(s))
}

// Port returns the service's well-known port.
func (s Service) Port() uint16 {
	if s != 0 && int(s) < len(serviceTable) {
		return serviceTable[s].port
	}
	return 0
}

// ParseService returns the service called name ("echo", case-insensitive;
// "quote" is accepted for qotd).
func ParseService(name string) (Service, bool) {
	name = strings.ToLower(name)
	if name == "quote" {
		return QOTD, true
	}
	for _, s := range Services() {
		if s.String() == name {
			return s, true
		}
	}
	return 0, false
}

// guardState is Config.Guard made ready for the receive path.
type guardState struct {
	loop        [65536 / 64]uint64 // source ports never answered
	answerGroup bool
	anySource   bool
	sources     *sourceBuckets // nil: no per-source limit
	total       *bucket        // nil: no engine-wide cap
	totalRate   rate
	limitEcho   bool
}

func newGuardState(g *Guard) guardState {
	gs := guardState{answerGroup: g.AnswerGroup, anySource: g.AnySource, limitEcho: g.LimitEcho}
	gs.loop[0] |= 1 // port 0: nothing can be sent to it
	for _, p := range g.LoopPorts {
		gs.loop[p/64] |= 1 << (p % 64)
	}
	if g.SourceRate >= 0 {
		gs.sources = newSourceBuckets(g.SourceTable, newRate(g.SourceRate, g.SourceBurst))
	}
	if g.TotalRate >= 0 {
		gs.total, gs.totalRate = new(bucket), newRate(g.TotalRate, g.TotalBurst)
	}
	return gs
}

func (g *guardState) isLoopPort(p uint16) bool { return g.loop[p/64]&(1<<(p%64)) != 0 }

// serviceHandler runs one built-in service.
type serviceHandler struct {
	e     *Engine
	s     Service
	limit bool // apply the per-source bucket and the total cap
}

func (e *Engine) serviceHandler(s Service) (*serviceHandler, error) {
	if s == 0 || int(s) >= len(serviceTable) {
		return nil, fmt.Errorf("engine: unknown service %d", s)
	}
	limit := serviceTable[s].amplifies || s == Echo && e.guard.limitEcho
	return &serviceHandler{e: e, s: s, limit: limit}, nil
}

// ServeUDP implements Handler.
func (h *serviceHandler) ServeUDP(r *Responder, d *Datagram) {
	if h.s == Discard || !h.allowed(r, d) {
		return
	}
	w := r.w
	switch h.s {
	case Echo:
		r.Echo()
	case Daytime:
		// RFC 867 fixes no syntax; this is its suggested one,
		// "Weekday, Month Day, Year Time-Zone".
		b := d.Time.AppendFormat(w.day[:0], "Monday, January 2, 2006 15:04:05-MST")
		r.Reply(append(b, '\r', '\n'))
	case QOTD:
		r.Reply(h.e.quote)
	case Chargen:
		n := w.rng.IntN(chargenMaxLen + 1)
		start := w.chargenAt * chargenLineLen
		w.chargenAt = (w.chargenAt + 1) % chargenChars
		r.Reply(chargenPattern[start : start+n])
	}
}

// allowed applies the guards, counting each refusal.
func (h *serviceHandler) allowed(r *Responder, d *Datagram) bool {
	w, g := r.w, &h.e.guard
	var why counter
	switch {
	case g.isLoopPort(d.Src.Port()):
		why = cGuardLoop
	case !g.answerGroup && h.e.addrs.find(d.Dst.Addr()) == nil:
		why = cGuardNonUnicast
	case !g.anySource && !h.e.addrs.isHostSource(d.Src.Addr()):
		why = cGuardSource
	case h.limit && g.sources != nil && !g.sources.allow(d.Src.Addr(), w.now):
		why = cGuardRateLimited
	case h.limit && g.total != nil && !g.total.allow(w.now, &g.totalRate):
		// After the source's own bucket, so that a source over its
		// limit does not use up the engine's budget for everyone.
		why = cGuardTotalLimited
	default:
		return true
	}
	w.c[why]++
	w.portStats(r.port).lsuppressed++
	return false
}

// The chargen pattern (RFC 864): lines of 72 of the 95 printable ASCII
// characters, each line starting one character further on, ended by
// CR LF. Datagram k carries up to 512 bytes from line k mod 95, so the
// table holds 95 lines plus enough to run 512 bytes past the last.
const (
	chargenChars   = 95
	chargenLineLen = 72 + 2
	chargenMaxLen  = 512
)

var chargenPattern = func() []byte {
	lines := chargenChars + (chargenMaxLen+chargenLineLen-1)/chargenLineLen
	b := make([]byte, 0, lines*chargenLineLen)
	for l := range lines {
		for i := range 72 {
			b = append(b, byte(' '+(l+i)%chargenChars))
		}
		b = append(b, '\r', '\n')
	}
	return b
}()
