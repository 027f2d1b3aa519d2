package ingest

import (
	"bufio"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func syslogBench(b *testing.B, network string) {
	out := make(chan *Block, 1024)
	opts := SyslogOptions{Routes: []SyslogRoute{{Jail: 0, Programs: []string{"sshd"}}}, Location: time.UTC}
	if network == "tcp" {
		opts.TCP = "127.0.0.1:0"
	} else {
		opts.UDP = "127.0.0.1:0"
	}
	s, err := StartSyslog(opts, out)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		for blk := range out {
			got.Add(int64(len(blk.Lines)))
			PutBlock(blk)
		}
		close(done)
	}()
	addr := s.TCPAddr()
	if network == "udp" {
		addr = s.UDPAddr()
	}
	c, err := net.Dial(network, addr.String())
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte("<38>Jan  1 00:10:00 web1 sshd[12345]: Failed password for invalid user admin from 203.0.113.7 port 40022 ssh2")
	framed := append([]byte(fmt.Sprintf("%d ", len(msg))), msg...)
	w := bufio.NewWriterSize(c, 256*1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	if network == "tcp" {
		for i := 0; i < b.N; i++ {
			w.Write(framed)
		}
	} else {
		// The sender batches too (sendmmsg), so the receiver is what is measured.
		pc := ipv4.NewPacketConn(c.(*net.UDPConn))
		batch := make([]ipv4.Message, 64)
		for i := range batch {
			batch[i].Buffers = [][]byte{msg}
		}
		for sent := 0; sent < b.N; {
			k := min(len(batch), b.N-sent)
			n, err := pc.WriteBatch(batch[:k], 0)
			if err != nil {
				b.Fatal(err)
			}
			sent += n
		}
	}
	w.Flush()
	deadline := time.Now().Add(10 * time.Second)
	for got.Load()+int64(s.Stats.Dropped.Load()) < int64(b.N) && time.Now().Before(deadline) {
		if network == "udp" && time.Since(deadline.Add(-10*time.Second)) > 2*time.Second {
			break // UDP may lose datagrams in the kernel; what arrived is counted
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	c.Close()
	s.Close()
	close(out)
	<-done
	b.ReportMetric(float64(got.Load())/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(int64(b.N)-got.Load())/float64(b.N)*100, "lost%")
}

// BenchmarkSyslogTCP: octet-counted RFC 3164 sshd messages over one loopback connection, through
// parsing, routing and classic-line blocks.
func BenchmarkSyslogTCP(b *testing.B) { syslogBench(b, "tcp") }

// BenchmarkSyslogUDP: the same messages as UDP datagrams.
func BenchmarkSyslogUDP(b *testing.B) { syslogBench(b, "udp") }
