package engine

import (
	"fmt"
	"math/rand/v2"
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

// serviceHandler runs one built-in service. What a service remembers
// between requests lives here, one copy per worker, so that workers
// never share it.
type serviceHandler struct {
	e       *Engine
	s       Service
	limit   bool             // apply the per-source bucket and the total cap
	workers []serviceScratch // indexed by worker id
}

// serviceScratch is one worker's state of a service.
type serviceScratch struct {
	rng       *rand.Rand // chargen's line lengths
	chargenAt int        // chargen's next line
	day       [64]byte   // daytime's answer
	_         [64]byte   // keep workers' states off each other's cache lines
}

func (e *Engine) serviceHandler(s Service) (*serviceHandler, error) {
	if s == 0 || int(s) >= len(serviceTable) {
		return nil, fmt.Errorf("engine: unknown service %d", s)
	}
	h := &serviceHandler{
		e:       e,
		s:       s,
		limit:   serviceTable[s].amplifies || s == Echo && e.guard.limitEcho,
		workers: make([]serviceScratch, max(e.cfg.Workers, 1)),
	}
	for i := range h.workers {
		h.workers[i].rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return h, nil
}

// ServeUDP implements Handler.
func (h *serviceHandler) ServeUDP(r *Responder, d *Datagram) {
	if h.s == Discard || !h.e.guard.allowed(r, d, h.limit) {
		return
	}
	st := &h.workers[r.w.id]
	switch h.s {
	case Echo:
		r.Echo()
	case Daytime:
		// RFC 867 fixes no syntax; this is its suggested one,
		// "Weekday, Month Day, Year Time-Zone".
		b := d.Time.AppendFormat(st.day[:0], "Monday, January 2, 2006 15:04:05-MST")
		r.Reply(append(b, '\r', '\n'))
	case QOTD:
		r.Reply(h.e.quote)
	case Chargen:
		n := st.rng.IntN(chargenMaxLen + 1)
		start := st.chargenAt * chargenLineLen
		st.chargenAt = (st.chargenAt + 1) % chargenChars
		r.Reply(chargenPattern[start : start+n])
	}
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
