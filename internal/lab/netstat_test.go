package lab

import "testing"

func TestParseNetCounters(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL ReasmOKs\nIp: 1 64 7\nIcmp: InMsgs InDestUnreachs\nIcmp: 3 2\n"
	netstat := "IpExt: InNoRoutes ReasmOverlaps\nIpExt: 0 5\n"
	snmp6 := "Ip6InReceives                   	12\nIp6ReasmOKs                     	4\n"
	got := map[string]uint64{}
	for _, s := range []string{snmp, netstat, snmp6} {
		parseNetCounters(s, got)
	}
	want := map[string]uint64{
		"Ip:Forwarding": 1, "Ip:DefaultTTL": 64, "Ip:ReasmOKs": 7, "Icmp:InMsgs": 3, "Icmp:InDestUnreachs": 2,
		"IpExt:InNoRoutes": 0, "IpExt:ReasmOverlaps": 5, "Ip6InReceives": 12, "Ip6ReasmOKs": 4,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
