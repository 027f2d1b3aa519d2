package ingest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

var benchSyslogMsg = []byte("<38>Jan  1 00:10:00 web1 sshd[12345]: Failed password for invalid user admin from 203.0.113.7 port 40022 ssh2")

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
	msg := benchSyslogMsg
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
		// The sender is another process (this test binary, see TestUDPSender), so this process's
		// CPU time is the receiving side's alone: on a 2-core machine the sender costs more per
		// datagram than the reader (sendmmsg carries the loopback delivery) and sets the wall rate.
		cmd := exec.Command(os.Args[0], "-test.run=^TestUDPSender$")
		cmd.Env = append(os.Environ(), "PORTCULLIS_UDP_SEND="+addr.String()+","+strconv.Itoa(b.N))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		ru0 := rusage(b)
		if err := cmd.Run(); err != nil {
			b.Fatalf("sender: %v", err)
		}
		defer func() {
			if cpu := rusage(b) - ru0; cpu > 0 {
				b.ReportMetric(float64(got.Load())/cpu.Seconds(), "msgs/receiver-core-s")
			}
		}()
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

// rusage is this process's CPU time, user and system.
func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestUDPSender is BenchmarkSyslogUDP's sender, run as a child process; it does nothing in a
// normal test run. It sends N copies of an sshd message with sendmmsg, 64 at a time.
func TestUDPSender(t *testing.T) {
	spec := os.Getenv("PORTCULLIS_UDP_SEND")
	if spec == "" {
		t.Skip("only the UDP benchmark's sender process runs this")
	}
	addr, count, _ := strings.Cut(spec, ",")
	n, err := strconv.Atoi(count)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc := ipv4.NewPacketConn(c.(*net.UDPConn))
	batch := make([]ipv4.Message, 64)
	for i := range batch {
		batch[i].Buffers = [][]byte{benchSyslogMsg}
	}
	for sent := 0; sent < n; {
		k, err := pc.WriteBatch(batch[:min(len(batch), n-sent)], 0)
		if err != nil {
			t.Fatal(err)
		}
		sent += k
	}
}

// BenchmarkParseSyslog is the parse alone, without sockets: an RFC 3164 and an RFC 5424 message
// read into their fields and written back as the classic line the filters read.
func BenchmarkParseSyslog(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	for _, c := range []struct{ name, msg string }{
		{"rfc3164", string(benchSyslogMsg)},
		{"rfc5424", `<38>1 2026-01-01T00:10:00.123Z web1 sshd 12345 - [meta sequenceId="1"] Failed password for invalid user admin from 203.0.113.7 port 40022 ssh2`},
	} {
		b.Run(c.name, func(b *testing.B) {
			msg := []byte(c.msg)
			var line []byte
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				m := ParseSyslog(msg, now, time.UTC)
				line = AppendClassicLine(line[:0], &m, now, nil, time.UTC)
			}
			if !bytes.Contains(line, []byte(" sshd[12345]: Failed password")) {
				b.Fatalf("parsed into %q", line)
			}
		})
	}
}
