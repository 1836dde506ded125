package proto

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

func parseTestdata(t *testing.T) *Services {
	t.Helper()
	f, err := os.Open("testdata/services")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseServices(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseServicesLookups(t *testing.T) {
	s := parseTestdata(t)
	for _, tc := range []struct {
		name, proto string
		port        uint16
		ok          bool
	}{
		{"echo", "udp", 7, true},
		{"echo", "tcp", 7, true},
		{"echo", "ddp", 4, true},
		{"echo", "", 7, true},    // any protocol: the first line wins
		{"ECHO", "UDP", 7, true}, // case is ignored
		{"sink", "udp", 9, true}, // alias
		{"null", "tcp", 9, true}, // second alias
		{"quote", "udp", 17, true},
		{"qotd", "udp", 17, true},
		{"qotd", "tcp", 0, false}, // only udp listed
		{"chargen", "udp", 19, true},
		{"ttytst", "udp", 19, true},
		{"sctp-tunneling", "sctp", 9899, true},
		{"domain", "udp", 53, true},
		{"nameserver", "udp", 53, true},
		{"3com-tsmux", "udp", 106, true},
		{"top", "udp", 65535, true},
		{"zero", "udp", 0, true},
		{"crlf", "udp", 5000, true},
		{"dos", "udp", 5000, true},
		{"missingproto", "", 0, false},
		{"toobig", "udp", 0, false},
		{"hexport", "udp", 0, false},
		{"nosuch", "udp", 0, false},
	} {
		port, ok := s.Port(tc.name, tc.proto)
		if port != tc.port || ok != tc.ok {
			t.Errorf("Port(%q, %q) = %d, %v; want %d, %v", tc.name, tc.proto, port, ok, tc.port, tc.ok)
		}
	}
	for _, tc := range []struct {
		port  uint16
		proto string
		name  string
		ok    bool
	}{
		{7, "udp", "echo", true},
		{4, "ddp", "echo", true},
		{9, "tcp", "discard", true},
		{19, "udp", "Chargen", true}, // official name as written
		{53, "udp", "domain", true},  // first line for 53/udp, not "nameserver"
		{1007, "udp", "echo", true},  // a later line for the same name still maps its port
		{53, "", "domain", true},
		{65535, "udp", "dyn", true},
		{0, "udp", "zero", true},
		{7, "sctp", "", false},
		{12, "", "", false},
	} {
		name, ok := s.Name(tc.port, tc.proto)
		if name != tc.name || ok != tc.ok {
			t.Errorf("Name(%d, %q) = %q, %v; want %q, %v", tc.port, tc.proto, name, ok, tc.name, tc.ok)
		}
	}
	// The duplicate name "echo" on 1007/udp does not displace 7/udp.
	if port, _ := s.Port("echo", "udp"); port != 7 {
		t.Errorf("duplicate name: Port(echo, udp) = %d, want 7 (first line wins)", port)
	}
}

func TestParseServicesMalformed(t *testing.T) {
	s := parseTestdata(t)
	want := map[string]string{ // first field -> reason fragment
		"missingproto": "has no /",
		"noport":       "missing port/protocol",
		"badport":      "not a decimal number",
		"toobig":       "out of range",
		"negative":     "not a decimal number",
		"emptyproto":   "empty protocol",
		"hexport":      "not a decimal number",
	}
	lines, err := os.ReadFile("testdata/services")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Split(string(lines), "\n")
	got := s.Malformed()
	if len(got) != len(want) {
		t.Errorf("%d malformed lines, want %d: %v", len(got), len(want), got)
	}
	for _, e := range got {
		first := strings.Fields(e.Text)[0]
		frag, ok := want[first]
		if !ok {
			t.Errorf("line %d (%q) reported as malformed", e.Line, e.Text)
			continue
		}
		if !strings.Contains(e.Reason, frag) {
			t.Errorf("line %d: reason %q, want it to mention %q", e.Line, e.Reason, frag)
		}
		if e.Line < 1 || e.Line > len(all) || !strings.HasPrefix(all[e.Line-1], first) {
			t.Errorf("line number %d does not point at %q", e.Line, first)
		}
		if !strings.Contains(e.Error(), "line ") {
			t.Errorf("Error() = %q lacks the line number", e.Error())
		}
	}
	// Malformed returns a copy.
	got[0] = nil
	if s.Malformed()[0] == nil {
		t.Error("Malformed shares its slice with the Services")
	}
}

func TestParseServicesAll(t *testing.T) {
	s := parseTestdata(t)
	var names []string
	for e := range s.All() {
		names = append(names, e.Name+"/"+e.Proto)
		if e.Name == "discard" && e.Proto == "tcp" {
			if !slices.Equal(e.Aliases, []string{"sink", "null"}) {
				t.Errorf("discard/tcp aliases = %q", e.Aliases)
			}
			e.Aliases[0] = "changed" // must not reach the Services
		}
	}
	if s.Len() != len(names) || names[0] != "echo/tcp" || names[len(names)-1] != "crlf/udp" {
		t.Errorf("All() = %v (Len %d)", names, s.Len())
	}
	if _, ok := s.Port("sink", "tcp"); !ok {
		t.Error("changing a yielded Service changed the Services")
	}
	for range s.All() {
		break // stopping early must not panic
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseServicesReadError(t *testing.T) {
	if _, err := ParseServices(failingReader{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("ParseServices(failing reader) error = %v", err)
	}
	long := "x " + strings.Repeat("a", 70000) + "\n"
	if _, err := ParseServices(strings.NewReader(long)); err == nil {
		t.Error("ParseServices accepted a line longer than the scanner's limit")
	}
}

func TestNilServices(t *testing.T) {
	var s *Services
	if _, ok := s.Port("echo", "udp"); ok {
		t.Error("nil Services found a port")
	}
	if _, ok := s.Name(7, "udp"); ok {
		t.Error("nil Services found a name")
	}
	if s.Len() != 0 || s.Malformed() != nil {
		t.Error("nil Services is not empty")
	}
	for range s.All() {
		t.Error("nil Services yielded an entry")
	}
	if _, err := s.ParsePort("7", "udp"); err != nil {
		t.Errorf("nil Services: ParsePort of a number failed: %v", err)
	}
}

// TestBuiltinServices checks the table the brief requires and that it
// parses without a malformed line.
func TestBuiltinServices(t *testing.T) {
	b := BuiltinServices()
	if len(b.Malformed()) != 0 {
		t.Fatalf("built-in table has malformed lines: %v", b.Malformed())
	}
	for _, tc := range []struct {
		name  string
		port  uint16
		proto string
	}{
		{"echo", 7, "udp"}, {"echo", 7, "tcp"},
		{"discard", 9, "udp"}, {"daytime", 13, "udp"}, {"qotd", 17, "udp"},
		{"chargen", 19, "udp"}, {"domain", 53, "udp"}, {"domain", 53, "tcp"},
		{"bootps", 67, "udp"}, {"bootpc", 68, "udp"}, {"tftp", 69, "udp"},
		{"ntp", 123, "udp"}, {"snmp", 161, "udp"}, {"snmp-trap", 162, "udp"},
		{"snmptrap", 162, "udp"}, {"syslog", 514, "udp"}, {"mdns", 5353, "udp"},
	} {
		if port, ok := b.Port(tc.name, tc.proto); !ok || port != tc.port {
			t.Errorf("built-in Port(%q, %q) = %d, %v; want %d", tc.name, tc.proto, port, ok, tc.port)
		}
	}
	for port, want := range map[uint16]string{7: "echo", 9: "discard", 13: "daytime", 17: "qotd",
		19: "chargen", 53: "domain", 67: "bootps", 68: "bootpc", 69: "tftp", 123: "ntp",
		161: "snmp", 162: "snmp-trap"} {
		if name, ok := b.Name(port, "udp"); !ok || name != want {
			t.Errorf("built-in Name(%d, udp) = %q, %v; want %q", port, name, ok, want)
		}
	}
}

// TestLoadServicesMerge merges the testdata file over the built-in table:
// the file's entries win, the built-in ones fill the gaps.
func TestLoadServicesMerge(t *testing.T) {
	m := loadServices("testdata/services", BuiltinServices())
	if name, _ := m.Name(19, "udp"); name != "Chargen" {
		t.Errorf("merged Name(19, udp) = %q, want the file's Chargen", name)
	}
	if port, ok := m.Port("dos", "udp"); !ok || port != 5000 {
		t.Errorf("merged Port(dos, udp) = %d, %v; want 5000 from the file", port, ok)
	}
	if port, ok := m.Port("snmp-trap", "udp"); !ok || port != 162 {
		t.Errorf("merged Port(snmp-trap, udp) = %d, %v; want 162 from the built-in table", port, ok)
	}
	if port, ok := m.Port("echo", "tcp"); !ok || port != 7 {
		t.Errorf("merged Port(echo, tcp) = %d, %v", port, ok)
	}
	if len(m.Malformed()) != len(parseTestdata(t).Malformed()) {
		t.Error("merge lost the file's malformed lines")
	}
	if m.Len() != parseTestdata(t).Len()+BuiltinServices().Len() {
		t.Error("merged Len is not the sum of both")
	}
	if got := loadServices("testdata/does-not-exist", BuiltinServices()); got != BuiltinServices() {
		t.Error("a missing file did not fall back to the built-in table")
	}
}

// TestDefaultServices uses the real /etc/services when there is one but
// asserts only what the built-in table guarantees.
func TestDefaultServices(t *testing.T) {
	d := DefaultServices()
	if d != DefaultServices() {
		t.Error("DefaultServices is not loaded once")
	}
	for _, name := range []string{"echo", "discard", "daytime", "chargen", "domain", "bootps", "tftp", "ntp", "snmp", "snmp-trap"} {
		want, _ := BuiltinServices().Port(name, "udp")
		if got, ok := d.Port(name, "udp"); !ok || got != want {
			t.Errorf("DefaultServices().Port(%q, udp) = %d, %v; want %d", name, got, ok, want)
		}
	}
	if _, err := os.Stat(servicesPath); err == nil {
		f, err := os.Open(servicesPath)
		if err != nil {
			t.Skipf("cannot read %s: %v", servicesPath, err)
		}
		defer f.Close()
		sys, err := ParseServices(f)
		if err != nil {
			t.Fatalf("parsing %s: %v", servicesPath, err)
		}
		t.Logf("%s: %d entries, %d malformed lines", servicesPath, sys.Len(), len(sys.Malformed()))
		for e := range sys.All() {
			if got, _ := d.Port(e.Name, e.Proto); got != e.Port {
				if first, _ := sys.Port(e.Name, e.Proto); first == e.Port {
					t.Errorf("DefaultServices().Port(%q, %q) = %d, the file says %d", e.Name, e.Proto, got, e.Port)
				}
			}
		}
	}
}

func TestParsePort(t *testing.T) {
	s := parseTestdata(t)
	for _, tc := range []struct {
		in, proto string
		want      uint16
		err       error
	}{
		{"0", "udp", 0, nil},
		{"7", "udp", 7, nil},
		{"007", "udp", 7, nil},
		{"65535", "udp", 65535, nil},
		{"65536", "udp", 0, ErrPortRange},
		{"99999999999999999999999", "udp", 0, ErrPortRange},
		{"-1", "udp", 0, ErrPortRange},
		{"echo", "udp", 7, nil},
		{"echo", "ddp", 4, nil},
		{"sink", "", 9, nil},
		{"3com-tsmux", "udp", 106, nil},
		{"qotd", "tcp", 0, ErrUnknownService},
		{"nosuch", "udp", 0, ErrUnknownService},
		{"0x10", "udp", 0, ErrUnknownService},
		{"+7", "udp", 0, ErrUnknownService},
		{" 7", "udp", 0, ErrUnknownService},
		{"", "udp", 0, ErrPortSyntax},
	} {
		got, err := s.ParsePort(tc.in, tc.proto)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("ParsePort(%q, %q) = %d, %v; want %d, %v", tc.in, tc.proto, got, err, tc.want, tc.err)
			continue
		}
		if err != nil {
			var pe *PortError
			if !errors.As(err, &pe) || pe.Port != tc.in || pe.Proto != tc.proto {
				t.Errorf("ParsePort(%q, %q) error %#v is not a matching *PortError", tc.in, tc.proto, err)
			}
			if !strings.Contains(err.Error(), tc.in) {
				t.Errorf("error %q does not name the input %q", err, tc.in)
			}
		}
	}
	for in, want := range map[[2]string]string{
		{"70000", "udp"}:  `proto: port "70000": port number out of range 0-65535`,
		{"nosuch", "udp"}: `proto: unknown udp service "nosuch"`,
		{"nosuch", ""}:    `proto: port "nosuch": unknown service`,
	} {
		if _, err := s.ParsePort(in[0], in[1]); err == nil || err.Error() != want {
			t.Errorf("ParsePort(%q, %q) error = %v, want %s", in[0], in[1], err, want)
		}
	}
	// The package-level function uses DefaultServices.
	if got, err := ParsePort("domain", "udp"); err != nil || got != 53 {
		t.Errorf("ParsePort(domain, udp) = %d, %v; want 53", got, err)
	}
	if got, err := ParsePort("snmp-trap", "udp"); err != nil || got != 162 {
		t.Errorf("ParsePort(snmp-trap, udp) = %d, %v; want 162", got, err)
	}
}

func ExampleParsePort() {
	for _, s := range []string{"7", "domain", "70000", "no-such-service"} {
		port, err := ParsePort(s, "udp")
		fmt.Println(port, err)
	}
	// Output:
	// 7 <nil>
	// 53 <nil>
	// 0 proto: port "70000": port number out of range 0-65535
	// 0 proto: unknown udp service "no-such-service"
}

// FuzzParseServices feeds arbitrary text to the parser: it must not fail
// on anything a bufio.Scanner can split, every entry it keeps must be found
// again by name and by port, and skipped lines must carry valid numbers.
func FuzzParseServices(f *testing.F) {
	f.Add(builtinServices)
	f.Add("echo 7/udp\nbad\n# comment\nx 70000/tcp\n\ty 1/\n")
	f.Add("a\t1/udp b c#d\r\nA 2/UDP\n")
	f.Fuzz(func(t *testing.T, text string) {
		s, err := ParseServices(strings.NewReader(text))
		if err != nil {
			if strings.Contains(err.Error(), "too long") {
				return
			}
			t.Fatalf("ParseServices: %v", err)
		}
		for e := range s.All() {
			if _, ok := s.Port(e.Name, e.Proto); !ok {
				t.Fatalf("entry %+v not found by name", e)
			}
			for _, a := range e.Aliases {
				if _, ok := s.Port(a, e.Proto); !ok {
					t.Fatalf("alias %q of %+v not found", a, e)
				}
			}
			if _, ok := s.Name(e.Port, e.Proto); !ok {
				t.Fatalf("entry %+v not found by port", e)
			}
			if e.Name == "" || e.Proto == "" || strings.ContainsAny(e.Name+e.Proto, " \t#") {
				t.Fatalf("bad entry %+v", e)
			}
		}
		lines := strings.Count(text, "\n") + 1
		prev := 0
		for _, m := range s.Malformed() {
			if m.Line <= prev || m.Line > lines {
				t.Fatalf("malformed line number %d after %d (of %d lines)", m.Line, prev, lines)
			}
			prev = m.Line
		}
	})
}
