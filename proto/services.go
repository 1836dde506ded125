package proto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Service is one entry of a services database: a port and protocol with
// the service's official name and its aliases.
type Service struct {
	Name    string   // official name, as written
	Port    uint16   // port number
	Proto   string   // protocol, lower case: "udp", "tcp", "sctp", "ddp", ...
	Aliases []string // other names, as written
}

// Services is a services database in the form of /etc/services (see
// services(5)). Lookups ignore ASCII case in names and protocols, as RFC
// 6335 section 5.1 asks of service names (glibc compares exactly; Go's
// net.LookupPort folds case too). When lines disagree the first one wins,
// as with getservbyname(3) and getservbyport(3), which scan the file in
// order. A Services is not changed after it is made and is safe for
// concurrent use.
type Services struct {
	entries   []Service
	byName    map[nameProto]int // lower-cased name or alias and protocol -> index in entries
	byNameAny map[string]int    // lower-cased name or alias -> first index, any protocol
	byPort    map[portProto]int // port and protocol -> index in entries
	byPortAny map[uint16]int    // port -> first index, any protocol
	malformed []*ServicesLineError
}

type nameProto struct{ name, proto string }

type portProto struct {
	port  uint16
	proto string
}

// ServicesLineError describes a line of a services file that
// ParseServices skipped.
type ServicesLineError struct {
	Line   int    // 1-based line number
	Text   string // the line, without its comment, trimmed
	Reason string // what is wrong with it
}

func (e *ServicesLineError) Error() string {
	return fmt.Sprintf("services line %d: %s: %q", e.Line, e.Reason, e.Text)
}

// ParseServices reads a services database in /etc/services form:
//
//	# comment
//	service-name  port/protocol  [aliases ...]  [# comment]
//
// Fields are separated by blanks (spaces and tabs; CR, VT and FF too), and
// "#" starts a comment anywhere on a line. The port is a decimal number
// from 0 to 65535 and the protocol any name from /etc/protocols (tcp, udp,
// sctp, dccp, ddp...).
//
// Like glibc's reader (and Go's net package) it skips lines it cannot
// parse, so that one bad line does not hide a whole file; each skipped
// line is kept with its number and the reason and returned by
// (*Services).Malformed, for a tool that wants to warn about them. The
// error is non-nil only when reading fails, including a line longer than
// bufio.MaxScanTokenSize.
func ParseServices(r io.Reader) (*Services, error) {
	var entries []Service
	var malformed []*ServicesLineError
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.FieldsFunc(text, isBlank)
		if len(fields) == 0 {
			continue
		}
		svc, reason := parseServiceFields(fields)
		if reason != "" {
			malformed = append(malformed, &ServicesLineError{
				Line: line, Text: strings.TrimSpace(text), Reason: reason,
			})
			continue
		}
		entries = append(entries, svc)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("proto: reading services: %w", err)
	}
	s := newServices(entries)
	s.malformed = malformed
	return s, nil
}

// isBlank reports the separators: C's isspace minus the newline that
// ended the line, as glibc splits fields.
func isBlank(r rune) bool {
	return r == ' ' || r == '\t' || r == '\r' || r == '\v' || r == '\f'
}

// parseServiceFields parses the fields of one line, or says what is wrong.
func parseServiceFields(f []string) (Service, string) {
	if len(f) < 2 {
		return Service{}, "missing port/protocol"
	}
	portStr, proto, ok := strings.Cut(f[1], "/")
	if !ok {
		return Service{}, "port/protocol " + strconv.Quote(f[1]) + " has no /"
	}
	if proto == "" {
		return Service{}, "empty protocol"
	}
	port, err := parsePortNumber(portStr)
	switch {
	case errors.Is(err, ErrPortRange):
		return Service{}, "port " + portStr + " out of range 0-65535"
	case err != nil:
		return Service{}, "port " + strconv.Quote(portStr) + " is not a decimal number"
	}
	var aliases []string
	if len(f) > 2 {
		aliases = slices.Clip(f[2:])
	}
	return Service{Name: f[0], Port: port, Proto: strings.ToLower(proto), Aliases: aliases}, ""
}

// newServices indexes entries; earlier entries win.
func newServices(entries []Service) *Services {
	s := &Services{
		entries:   entries,
		byName:    make(map[nameProto]int, 2*len(entries)),
		byNameAny: make(map[string]int, 2*len(entries)),
		byPort:    make(map[portProto]int, len(entries)),
		byPortAny: make(map[uint16]int, len(entries)),
	}
	addName := func(name, proto string, i int) {
		name = strings.ToLower(name)
		if _, ok := s.byName[nameProto{name, proto}]; !ok {
			s.byName[nameProto{name, proto}] = i
		}
		if _, ok := s.byNameAny[name]; !ok {
			s.byNameAny[name] = i
		}
	}
	for i, e := range entries {
		addName(e.Name, e.Proto, i)
		for _, a := range e.Aliases {
			addName(a, e.Proto, i)
		}
		if _, ok := s.byPort[portProto{e.Port, e.Proto}]; !ok {
			s.byPort[portProto{e.Port, e.Proto}] = i
		}
		if _, ok := s.byPortAny[e.Port]; !ok {
			s.byPortAny[e.Port] = i
		}
	}
	return s
}

// Port returns the port of the service called name (its official name or
// an alias) for protocol proto. An empty proto matches any protocol, the
// first line in the file winning, as getservbyname(name, NULL) does.
func (s *Services) Port(name, proto string) (uint16, bool) {
	if s == nil {
		return 0, false
	}
	var i int
	var ok bool
	if proto == "" {
		i, ok = s.byNameAny[strings.ToLower(name)]
	} else {
		i, ok = s.byName[nameProto{strings.ToLower(name), strings.ToLower(proto)}]
	}
	if !ok {
		return 0, false
	}
	return s.entries[i].Port, true
}

// Name returns the official name of the service on port for protocol
// proto. An empty proto matches any protocol, the first line winning.
func (s *Services) Name(port uint16, proto string) (string, bool) {
	if s == nil {
		return "", false
	}
	var i int
	var ok bool
	if proto == "" {
		i, ok = s.byPortAny[port]
	} else {
		i, ok = s.byPort[portProto{port, strings.ToLower(proto)}]
	}
	if !ok {
		return "", false
	}
	return s.entries[i].Name, true
}

// Len returns the number of entries.
func (s *Services) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// All yields the entries in file order; for DefaultServices, those of
// /etc/services come before the built-in ones. Each Service is a copy.
func (s *Services) All() iter.Seq[Service] {
	return func(yield func(Service) bool) {
		if s == nil {
			return
		}
		for _, e := range s.entries {
			e.Aliases = slices.Clone(e.Aliases)
			if !yield(e) {
				return
			}
		}
	}
}

// Malformed returns the lines that ParseServices skipped, in order.
func (s *Services) Malformed() []*ServicesLineError {
	if s == nil {
		return nil
	}
	return slices.Clone(s.malformed)
}

// over returns s merged over base: a lookup finds s's entry when s has one
// and base's otherwise. Malformed lines are s's.
func (s *Services) over(base *Services) *Services {
	m := newServices(slices.Concat(s.entries, base.entries))
	m.malformed = s.malformed
	return m
}

// Errors wrapped by the *PortError values that ParsePort returns.
var (
	ErrPortSyntax     = errors.New("not a port number or service name")
	ErrPortRange      = errors.New("port number out of range 0-65535")
	ErrUnknownService = errors.New("unknown service")
)

// PortError reports a port that ParsePort could not resolve. Use
// errors.Is with ErrPortSyntax, ErrPortRange or ErrUnknownService.
type PortError struct {
	Port  string // the argument, as given
	Proto string // the protocol asked for, or ""
	Err   error
}

func (e *PortError) Error() string {
	if errors.Is(e.Err, ErrUnknownService) && e.Proto != "" {
		return fmt.Sprintf("proto: unknown %s service %q", e.Proto, e.Port)
	}
	return fmt.Sprintf("proto: port %q: %v", e.Port, e.Err)
}

func (e *PortError) Unwrap() error { return e.Err }

// ParsePort resolves a port given as a decimal number ("53") or a service
// name ("domain") for protocol proto ("udp", "tcp", ... or "" for any), in
// DefaultServices. A number must lie in 0-65535 (a negative one is out of
// range too); anything that is not all decimal digits is looked up as a
// name. The error is a *PortError wrapping ErrPortSyntax (empty string),
// ErrPortRange or ErrUnknownService.
func ParsePort(s, proto string) (uint16, error) {
	return DefaultServices().ParsePort(s, proto)
}

// ParsePort is the package-level ParsePort with s as the services
// database.
func (s *Services) ParsePort(port, proto string) (uint16, error) {
	if port == "" {
		return 0, &PortError{Port: port, Proto: proto, Err: ErrPortSyntax}
	}
	if isDecimal(port) {
		n, err := parsePortNumber(port)
		if err != nil {
			return 0, &PortError{Port: port, Proto: proto, Err: err}
		}
		return n, nil
	}
	if port[0] == '-' && isDecimal(port[1:]) {
		return 0, &PortError{Port: port, Proto: proto, Err: ErrPortRange}
	}
	if n, ok := s.Port(port, proto); ok {
		return n, nil
	}
	return 0, &PortError{Port: port, Proto: proto, Err: ErrUnknownService}
}

func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parsePortNumber parses a port number: decimal digits only, at most 65535.
func parsePortNumber(s string) (uint16, error) {
	if !isDecimal(s) {
		return 0, ErrPortSyntax
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, ErrPortRange
	}
	return uint16(n), nil
}

// builtinServices is the table DefaultServices falls back on when
// /etc/services lacks an entry or does not exist (containers, Darwin
// sandboxes). Names, aliases and ports follow IANA's registry as written
// in Debian's /etc/services, with qotd/udp, ntp/tcp and traceroute from
// IANA. It is parsed with ParseServices, so it is also its first test.
const builtinServices = `
echo		7/tcp
echo		7/udp
discard		9/tcp		sink null
discard		9/udp		sink null
daytime		13/tcp
daytime		13/udp
qotd		17/tcp		quote		# Quote of the Day
qotd		17/udp		quote
chargen		19/tcp		ttytst source	# Character Generator
chargen		19/udp		ttytst source
ftp-data	20/tcp
ftp		21/tcp
ssh		22/tcp				# SSH Remote Login Protocol
telnet		23/tcp
smtp		25/tcp		mail
time		37/tcp		timserver
time		37/udp		timserver
domain		53/tcp				# Domain Name Server
domain		53/udp
bootps		67/udp				# BOOTP/DHCP server
bootpc		68/udp				# BOOTP/DHCP client
tftp		69/udp
http		80/tcp		www		# WorldWideWeb HTTP
kerberos	88/tcp		kerberos5 krb5 kerberos-sec
kerberos	88/udp		kerberos5 krb5 kerberos-sec
sunrpc		111/tcp		portmapper	# RPC 4.0 portmapper
sunrpc		111/udp		portmapper
ntp		123/tcp
ntp		123/udp				# Network Time Protocol
netbios-ns	137/udp				# NETBIOS Name Service
netbios-dgm	138/udp				# NETBIOS Datagram Service
snmp		161/tcp				# Simple Net Mgmt Protocol
snmp		161/udp
snmp-trap	162/tcp		snmptrap	# Traps for SNMP
snmp-trap	162/udp		snmptrap
ldap		389/tcp
ldap		389/udp
https		443/tcp				# HTTP over TLS
https		443/udp				# HTTP/3
isakmp		500/udp				# IPsec key management
syslog		514/udp
dhcpv6-client	546/udp
dhcpv6-server	547/udp
domain-s	853/tcp				# DNS over TLS [RFC7858]
domain-s	853/udp				# DNS over DTLS [RFC8094]
openvpn		1194/udp
radius		1812/udp
radius-acct	1813/udp	radacct
nfs		2049/tcp
nfs		2049/udp
ipsec-nat-t	4500/udp			# IPsec NAT-Traversal [RFC3947]
vxlan		4789/udp			# Virtual eXtensible LAN [RFC7348]
sip		5060/tcp			# Session Initiation Protocol
sip		5060/udp
mdns		5353/udp			# Multicast DNS
geneve		6081/udp			# Generic Network Virtualization Encapsulation [RFC8926]
traceroute	33434/udp
`

// builtin parses builtinServices once.
var builtin = sync.OnceValue(func() *Services {
	s, err := ParseServices(strings.NewReader(builtinServices))
	if err != nil || len(s.malformed) != 0 {
		panic("proto: built-in services table does not parse")
	}
	return s
})

// BuiltinServices returns the built-in table alone, without /etc/services.
func BuiltinServices() *Services { return builtin() }

// servicesPath is where DefaultServices looks; the same on Linux, the BSDs
// and Darwin.
const servicesPath = "/etc/services"

var defaultServices = sync.OnceValue(func() *Services {
	return loadServices(servicesPath, builtin())
})

// DefaultServices returns /etc/services merged over the built-in table:
// an entry of the file wins over a built-in one for the same name or port
// and protocol, and the built-in table fills in what the file lacks. If
// the file is missing or unreadable, it is the built-in table alone. The
// file is read once, on first use.
func DefaultServices() *Services { return defaultServices() }

// loadServices reads the services file at path merged over base, or returns
// base if the file cannot be read.
func loadServices(path string, base *Services) *Services {
	f, err := os.Open(path)
	if err != nil {
		return base
	}
	defer f.Close()
	s, err := ParseServices(f)
	if err != nil {
		return base
	}
	return s.over(base)
}
