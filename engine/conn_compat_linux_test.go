//go:build linux

package engine

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"

	"github.com/pktengine/pktengine/internal/lab"
	"github.com/pktengine/pktengine/internal/labtest"
)

// Third-party code that takes a net.PacketConn runs on the engine's Conn
// unmodified: a DNS server from miekg/dns and a QUIC server from
// quic-go, each answering a client of the same library on a kernel
// socket in the other namespace.

func compatLab(t *testing.T) (*lab.Host, *Conn, netip.AddrPort) {
	l := labtest.New(t, nil)
	a, b := l.A(), l.B()
	e := openEngine(t, a, &Config{Addrs: []netip.Prefix{netip.MustParsePrefix("198.18.0.10/24")}})
	c, err := e.ListenUDP(netip.MustParseAddrPort("198.18.0.10:0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return b, c, netip.AddrPortFrom(netip.MustParseAddr("198.18.0.10"), c.Port().Addr().Port())
}

func TestConnMiekgDNSServer(t *testing.T) {
	b, c, addr := compatLab(t)
	mux := dns.NewServeMux()
	mux.HandleFunc("example.", func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 300},
			A:   net.IPv4(192, 0, 2, 1),
		})
		w.WriteMsg(m)
	})
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: c, Handler: mux, NotifyStartedFunc: func() { close(started) }}
	errc := make(chan error, 1)
	go func() { errc <- srv.ActivateAndServe() }()
	<-started
	defer func() {
		srv.Shutdown()
		<-errc
	}()

	r, err := lab.OnInterface(b, func(*net.Interface) (*dns.Msg, error) {
		cl := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
		q := new(dns.Msg)
		q.SetQuestion("www.example.", dns.TypeA)
		r, _, err := cl.Exchange(q, addr.String())
		return r, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Answer) != 1 || !r.Authoritative || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("answer %v", r)
	}
}

func TestConnQUICRoundTrip(t *testing.T) {
	b, c, addr := compatLab(t)
	ln, err := quic.Listen(c, serverTLS(t), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return
		}
		s, err := conn.AcceptStream(context.Background())
		if err != nil {
			return
		}
		io.Copy(s, s) // echo the stream
		s.Close()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := lab.OnInterface(b, func(*net.Interface) ([]byte, error) {
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: b.IPv4.Addr().AsSlice()})
		if err != nil {
			return nil, err
		}
		defer udp.Close()
		tr := &quic.Transport{Conn: udp}
		defer tr.Close()
		conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(addr), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"pktengine-test"}}, &quic.Config{})
		if err != nil {
			return nil, err
		}
		defer conn.CloseWithError(0, "")
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			return nil, err
		}
		msg := make([]byte, 20000) // several QUIC packets each way
		for i := range msg {
			msg[i] = byte(i)
		}
		if _, err := s.Write(msg); err != nil {
			return nil, err
		}
		s.Close()
		return io.ReadAll(s)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20000 || got[12345] != byte(12345&0xff) {
		t.Fatalf("echoed %d bytes", len(got))
	}
}

// serverTLS returns a TLS config with a fresh self-signed certificate.
func serverTLS(t *testing.T) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pktengine test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{"pktengine-test"},
	}
}
