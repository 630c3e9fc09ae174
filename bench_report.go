// bench_report.go owns what `comet bench` measures and how it says it: a
// fixed-size latency histogram, the sampler of a broker's memory and CPU
// time from /proc, and the report (a table and one JSON line).
//
// Invariant: memory used for measurement does not grow with the number of
// samples (a histogram, not a list), so a long run cannot exhaust it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/bits"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// benchHistSub is the number of sub-buckets per power of two: values are
// kept to within 1/128 (under 0.8 %) of their true size.
const (
	benchHistSubBits = 7
	benchHistSub     = 1 << benchHistSubBits
	benchHistBuckets = (64 - benchHistSubBits + 1) * benchHistSub
)

// benchHist is a log-linear histogram of durations in nanoseconds. The zero
// value is empty and ready to use; it is not safe for concurrent use.
type benchHist struct {
	counts [benchHistBuckets]uint64
	n      uint64
	min    int64
	max    int64
}

func benchHistIndex(v uint64) int {
	if v < benchHistSub {
		return int(v)
	}
	shift := bits.Len64(v) - benchHistSubBits - 1
	return (shift+1)*benchHistSub + int(v>>uint(shift)) - benchHistSub
}

// benchHistMid is the middle of a bucket's range.
func benchHistMid(idx int) int64 {
	if idx < benchHistSub {
		return int64(idx)
	}
	shift := uint(idx/benchHistSub - 1)
	m := uint64(idx%benchHistSub + benchHistSub)
	lo := m << shift
	hi := (m+1)<<shift - 1
	return int64(lo + (hi-lo)/2)
}

// record adds one duration; a negative one counts as zero.
func (h *benchHist) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	h.counts[benchHistIndex(uint64(v))]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
}

// merge adds every sample of o to h.
func (h *benchHist) merge(o *benchHist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
}

// quantile returns the nearest-rank q-quantile (0 < q <= 1), kept within
// the recorded minimum and maximum so that p50 <= p99 <= max always holds.
func (h *benchHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := benchHistMid(i)
			v = max(v, h.min)
			v = min(v, h.max)
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

// benchLatency is one latency line of the report, in milliseconds.
type benchLatency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (h *benchHist) summary() benchLatency {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	return benchLatency{Count: h.n, P50: ms(h.quantile(0.50)), P99: ms(h.quantile(0.99)), Max: ms(time.Duration(h.max))}
}

// benchProcSample is what /proc says about a process at one moment.
type benchProcSample struct {
	rssKiB   int64 // VmRSS
	hwmKiB   int64 // VmHWM, the peak resident set since the process started
	cpuTicks int64 // utime + stime, in clock ticks
}

// benchClockTicks is USER_HZ, 100 on every Linux architecture Go supports
// (sysconf(_SC_CLK_TCK) needs cgo; the kernel fixes the value exported to
// user space at 100).
const benchClockTicks = 100

// parseProcStatus reads VmRSS and VmHWM (in kB) from /proc/PID/status.
func parseProcStatus(b []byte) (rss, hwm int64, err error) {
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			return 0, 0, fmt.Errorf("empty %s", key)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %v", key, err)
		}
		if key == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
		found++
	}
	if found < 2 {
		return 0, 0, errors.New("no VmRSS and VmHWM lines (a kernel thread or a zombie?)")
	}
	return rss, hwm, nil
}

// parseProcStat reads utime+stime (fields 14 and 15) from /proc/PID/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStat(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return 0, errors.New("too few fields")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("utime or stime is not a number")
	}
	return u + s, nil
}

func readProcSample(pid int) (benchProcSample, error) {
	var s benchProcSample
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	if s.rssKiB, s.hwmKiB, err = parseProcStatus(st); err != nil {
		return s, fmt.Errorf("/proc/%d/status: %v", pid, err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.cpuTicks, err = parseProcStat(stat); err != nil {
		return s, fmt.Errorf("/proc/%d/stat: %v", pid, err)
	}
	return s, nil
}

// benchSampler samples a process every interval until stopped.
type benchSampler struct {
	pid      int
	interval time.Duration

	mu      sync.Mutex
	first   benchProcSample
	last    benchProcSample
	peakRSS int64
	samples int
	err     error

	stop chan struct{}
	done chan struct{}
}

// startBenchSampler takes a first sample at once (failing if the process
// cannot be read) and then one every interval.
func startBenchSampler(pid int, interval time.Duration) (*benchSampler, error) {
	first, err := readProcSample(pid)
	if err != nil {
		return nil, err
	}
	s := &benchSampler{pid: pid, interval: interval, first: first, last: first,
		peakRSS: first.rssKiB, samples: 1, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s, nil
}

func (s *benchSampler) loop() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if !s.take() {
				return
			}
		}
	}
}

// take records one sample; it returns false once the process is gone.
func (s *benchSampler) take() bool {
	p, err := readProcSample(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return false
	}
	s.last = p
	s.peakRSS = max(s.peakRSS, p.rssKiB)
	s.samples++
	return true
}

// finish stops sampling, takes a last sample and returns the figures.
func (s *benchSampler) finish() *benchBroker {
	close(s.stop)
	<-s.done
	if s.err == nil {
		s.take()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := &benchBroker{
		PID:        s.pid,
		RSSPeakMiB: benchMiB(s.peakRSS),
		RSSEndMiB:  benchMiB(s.last.rssKiB),
		VmHWMMiB:   benchMiB(s.last.hwmKiB),
		CPUSeconds: float64(s.last.cpuTicks-s.first.cpuTicks) / benchClockTicks,
		Samples:    s.samples,
	}
	if s.err != nil {
		b.Error = s.err.Error()
	}
	return b
}

func benchMiB(kib int64) float64 { return math.Round(float64(kib)/1024*10) / 10 }

// benchBroker is what the report says about the broker process (--pid).
type benchBroker struct {
	PID        int     `json:"pid"`
	RSSPeakMiB float64 `json:"rss_peak_mib"` // highest VmRSS sampled during the run
	RSSEndMiB  float64 `json:"rss_end_mib"`  // VmRSS at the end
	VmHWMMiB   float64 `json:"vmhwm_mib"`    // the kernel's peak since the broker started
	CPUSeconds float64 `json:"cpu_s"`        // utime+stime spent during the run
	// The counted phase only: from the first counted submission until every
	// subscriber had every accepted event (warm-up and connecting excluded).
	PhaseCPUSeconds float64 `json:"phase_cpu_s"`
	CPUPerEventUS   float64 `json:"cpu_per_event_us"` // PhaseCPUSeconds per accepted event, in µs
	Samples         int     `json:"samples"`
	Error           string  `json:"error,omitempty"` // why sampling stopped early
}

// benchSubscriberReport summarises delivery to the subscribers.
type benchSubscriberReport struct {
	Connected     int     `json:"connected"`
	Authenticated int     `json:"authenticated"` // answered an authenticate from the broker
	Expected      int64   `json:"expected"`      // per subscriber
	ReceivedMin   int64   `json:"received_min"`
	ReceivedMax   int64   `json:"received_max"`
	Completeness  float64 `json:"completeness"` // received_min / expected (1 when nothing is expected)
	Duplicates    int64   `json:"duplicates"`   // events received more than once, over all subscribers
	Unexpected    int64   `json:"unexpected"`   // events received that this run did not count (other traffic, warm-up)
	Dropped       int     `json:"dropped"`      // subscribers whose connection ended before the run did
	DropReason    string  `json:"drop_reason,omitempty"`
	Iamalive      int64   `json:"iamalive"` // iamalive messages answered
}

// benchGenerator is the load generator's own CPU time (this process, read
// from /proc/self) over the counted phase, so that a reader can tell the
// broker's cost from the generator's when both share the machine's cores.
type benchGenerator struct {
	PhaseCPUSeconds float64 `json:"phase_cpu_s"`
	CPUPerEventUS   float64 `json:"cpu_per_event_us"` // per accepted event, in µs
	Error           string  `json:"error,omitempty"`
}

// benchPhaseCPU reads a process's CPU ticks at the two ends of the counted
// phase; err is set when /proc cannot be read (not Linux).
type benchPhaseCPU struct {
	pid        int
	start, end int64
	err        error
}

func (p *benchPhaseCPU) mark(end bool) {
	if p == nil || p.err != nil {
		return
	}
	s, err := readProcSample(p.pid)
	switch {
	case err != nil:
		p.err = err
	case end:
		p.end = s.cpuTicks
	default:
		p.start = s.cpuTicks
	}
}

// seconds returns the CPU time between the marks and per accepted event (µs).
func (p *benchPhaseCPU) seconds(accepted int64) (s, perEventUS float64) {
	s = float64(p.end-p.start) / benchClockTicks
	if accepted > 0 {
		perEventUS = math.Round(s/float64(accepted)*1e7) / 10
	}
	return s, perEventUS
}

// benchReport is the whole result of a run; the JSON line is this struct.
type benchReport struct {
	Target       string                `json:"target"`
	Subscribe    string                `json:"subscribe,omitempty"`
	EventBytes   int                   `json:"event_bytes"`
	Events       int                   `json:"events"`
	Warmup       int                   `json:"warmup"`
	Authors      int                   `json:"authors"`
	Subscribers  int                   `json:"subscribers"`
	Filters      int                   `json:"filters"`
	RateCap      float64               `json:"rate_cap"`
	Sent         int64                 `json:"sent"`
	Accepted     int64                 `json:"accepted"`
	Naks         int64                 `json:"naks"`
	Errors       int64                 `json:"errors"`
	ErrorKinds   map[string]int64      `json:"error_kinds,omitempty"`
	FirstError   string                `json:"first_error,omitempty"`
	NakReasons   map[string]int64      `json:"nak_reasons,omitempty"`
	Seconds      float64               `json:"seconds"` // submission phase: first submission to last reply
	AcceptedRate float64               `json:"accepted_per_s"`
	AckLatency   benchLatency          `json:"ack_latency"`
	Receipt      benchLatency          `json:"receipt_latency"`
	Delivery     benchSubscriberReport `json:"delivery"`
	Broker       *benchBroker          `json:"broker,omitempty"`
	Generator    *benchGenerator       `json:"generator,omitempty"`
	TimedOut     bool                  `json:"timed_out"`
}

// writeJSON writes the report as one line.
func (r *benchReport) writeJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// writeTable writes the readable form of the report.
func (r *benchReport) writeTable(w io.Writer) {
	fmt.Fprintf(w, "comet bench: %d events (+%d warm-up), %d authors, %d subscribers, %d-byte event\n",
		r.Events, r.Warmup, r.Authors, r.Subscribers, r.EventBytes)
	fmt.Fprintf(w, "  %-18s %s", "target", r.Target)
	if r.Subscribe != "" {
		fmt.Fprintf(w, "   subscribe %s", r.Subscribe)
	}
	if r.RateCap > 0 {
		fmt.Fprintf(w, "   rate cap %g/s", r.RateCap)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %-18s %d sent, %d accepted, %d naks, %d errors\n", "submissions", r.Sent, r.Accepted, r.Naks, r.Errors)
	for _, k := range sortedKeys(r.NakReasons) {
		fmt.Fprintf(w, "  %-18s %d × %s\n", "nak reason", r.NakReasons[k], k)
	}
	for _, k := range sortedKeys(r.ErrorKinds) {
		fmt.Fprintf(w, "  %-18s %d × %s\n", "error", r.ErrorKinds[k], k)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "  %-18s %s\n", "first error", r.FirstError)
	}
	fmt.Fprintf(w, "  %-18s %.1f events/s (%.3f s)\n", "accepted rate", r.AcceptedRate, r.Seconds)
	lat := func(name string, l benchLatency) {
		fmt.Fprintf(w, "  %-18s p50 %.3f ms   p99 %.3f ms   max %.3f ms   (%d samples)\n", name, l.P50, l.P99, l.Max, l.Count)
	}
	lat("submit to ack", r.AckLatency)
	if r.Subscribers > 0 {
		lat("submit to receipt", r.Receipt)
		d := r.Delivery
		fmt.Fprintf(w, "  %-18s %d connected, %d authenticated, %d dropped, %d iamalive answered\n",
			"subscribers", d.Connected, d.Authenticated, d.Dropped, d.Iamalive)
		if d.DropReason != "" {
			fmt.Fprintf(w, "  %-18s %s\n", "first drop", d.DropReason)
		}
		fmt.Fprintf(w, "  %-18s received min %d / max %d of %d expected each (%.1f %%), %d duplicates, %d other\n",
			"delivery", d.ReceivedMin, d.ReceivedMax, d.Expected, 100*d.Completeness, d.Duplicates, d.Unexpected)
	}
	if b := r.Broker; b != nil {
		fmt.Fprintf(w, "  %-18s pid %d: RSS peak %.1f MiB, end %.1f MiB, VmHWM %.1f MiB, CPU %.2f s (%d samples)\n",
			"broker", b.PID, b.RSSPeakMiB, b.RSSEndMiB, b.VmHWMMiB, b.CPUSeconds, b.Samples)
		fmt.Fprintf(w, "  %-18s %.2f s in the counted phase, %.1f µs per accepted event\n", "broker CPU", b.PhaseCPUSeconds, b.CPUPerEventUS)
		if b.Error != "" {
			fmt.Fprintf(w, "  %-18s %s\n", "broker sampling", b.Error)
		}
	}
	if g := r.Generator; g != nil && g.Error == "" {
		fmt.Fprintf(w, "  %-18s %.2f s in the counted phase, %.1f µs per accepted event (comet bench itself)\n", "generator CPU", g.PhaseCPUSeconds, g.CPUPerEventUS)
	}
	if r.TimedOut {
		fmt.Fprintf(w, "  %-18s the run hit --timeout; figures cover what finished\n", "timed out")
	}
}

func sortedKeys(m map[string]int64) []string {
	return slices.Sorted(maps.Keys(m))
}
