package bpf

import "github.com/pktengine/pktengine/proto"

// lookupPort resolves a service name for one transport protocol, through
// Options.LookupPort or else proto.DefaultServices (/etc/services merged
// over pktengine's built-in table; docs/BPF.md says where that differs
// from tcpdump, which reads the file alone).
func (o *Options) lookupPort(name, transport string) (uint16, bool) {
	if o != nil && o.LookupPort != nil {
		return o.LookupPort(name, transport)
	}
	return proto.DefaultServices().Port(name, transport)
}
