package proto

// EtherType values (IEEE 802.3, IANA "ieee-802-numbers").
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	EtherTypeVLAN uint16 = 0x8100 // IEEE 802.1Q customer tag
	EtherTypeQinQ uint16 = 0x88a8 // IEEE 802.1ad service tag
	EtherTypeIPv6 uint16 = 0x86dd
	EtherTypeAll  uint16 = 0x0003 // ETH_P_ALL, for AF_PACKET sockets
)

// IP protocol numbers (IANA "protocol-numbers"), as carried in the IPv4
// Protocol field and the IPv6 Next Header field.
const (
	IPProtoHopByHop uint8 = 0  // IPv6 Hop-by-Hop Options (RFC 8200)
	IPProtoICMP     uint8 = 1  // RFC 792
	IPProtoIGMP     uint8 = 2  // RFC 1112, RFC 2236, RFC 3376
	IPProtoTCP      uint8 = 6  // RFC 9293
	IPProtoUDP      uint8 = 17 // RFC 768
	IPProtoRouting  uint8 = 43 // IPv6 Routing header
	IPProtoFragment uint8 = 44 // IPv6 Fragment header
	IPProtoESP      uint8 = 50
	IPProtoAH       uint8 = 51
	IPProtoICMPv6   uint8 = 58 // RFC 4443
	IPProtoNoNext   uint8 = 59 // IPv6 No Next Header
	IPProtoDstOpts  uint8 = 60 // IPv6 Destination Options
	IPProtoMobility uint8 = 135
	IPProtoHIP      uint8 = 139
	IPProtoShim6    uint8 = 140
)

// IsIPv6ExtensionHeader reports whether next is an IPv6 extension header
// that a parser must walk (RFC 8200 section 4) to reach the upper layer.
func IsIPv6ExtensionHeader(next uint8) bool {
	switch next {
	case IPProtoHopByHop, IPProtoRouting, IPProtoFragment, IPProtoDstOpts,
		IPProtoAH, IPProtoMobility, IPProtoHIP, IPProtoShim6:
		return true
	}
	return false
}
