package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// kafkaVariant is the i-th value of the generated batches: the payload
// with a comment after the root element (PROVENANCE.md).
func kafkaVariant(p []byte, i int) []byte {
	return append(append([]byte{}, p...), fmt.Sprintf("\n<!-- variant %d -->\n", i)...)
}

// kafkaCheckPlain checks records made by the generator's plain(): value
// variant(p, i) at base+i, key "k<i>" on odd i, two headers on record 3,
// timestamp 1700000000000 + 10i ms.
func kafkaCheckPlain(t *testing.T, what string, recs []kafkaRecord, base int64, p []byte, from, n int) {
	t.Helper()
	if len(recs) != n-from {
		t.Fatalf("%s: %d records, want %d", what, len(recs), n-from)
	}
	for j, r := range recs {
		i := from + j
		if r.offset != base+int64(i) {
			t.Errorf("%s: record %d has offset %d", what, i, r.offset)
		}
		if !bytes.Equal(r.value, kafkaVariant(p, i)) || r.tooLarge {
			t.Errorf("%s: record %d: value of %d bytes (tooLarge %v)", what, i, len(r.value), r.tooLarge)
		}
		wantKey := []byte(nil)
		if i%2 == 1 {
			wantKey = []byte(fmt.Sprintf("k%d", i))
		}
		if !bytes.Equal(r.key, wantKey) || (wantKey == nil) != (r.key == nil) {
			t.Errorf("%s: record %d: key %q", what, i, r.key)
		}
		if want := time.UnixMilli(1700000000000 + 10*int64(i)); !r.timestamp.Equal(want) {
			t.Errorf("%s: record %d: timestamp %v, want %v", what, i, r.timestamp, want)
		}
		if i == 3 {
			if len(r.headers) != 2 || r.headers[0].key != "h" || string(r.headers[0].value) != "v" ||
				r.headers[1].key != "null" || r.headers[1].value != nil {
				t.Errorf("%s: record 3 headers %+v", what, r.headers)
			}
		} else if len(r.headers) != 0 {
			t.Errorf("%s: record %d headers %+v", what, i, r.headers)
		}
	}
}

func TestKafkaBatchCodecs(t *testing.T) {
	m := kafkaTestPayloads(t)["median"]
	for _, name := range []string{"none", "gzip", "snappy", "xsnappy", "lz4", "zstd"} {
		data := kafkaTestFile(t, "batch_"+name+".bin")
		recs, next, err := decodeKafkaBatches(data, 0, 1<<20, 64<<20)
		if err != nil || next != 1020 {
			t.Errorf("%s: next %d, err %v", name, next, err)
		}
		kafkaCheckPlain(t, name, recs, 1000, m, 0, 20)
		// A compressed batch that starts before the fetch offset.
		recs, next, err = decodeKafkaBatches(data, 1013, 1<<20, 64<<20)
		if err != nil || next != 1020 {
			t.Errorf("%s from 1013: next %d, err %v", name, next, err)
		}
		kafkaCheckPlain(t, name+" from 1013", recs, 1000, m, 13, 20)
	}
}

func TestKafkaBatchNoAlias(t *testing.T) {
	data := kafkaTestFile(t, "batch_none.bin")
	recs, _, err := decodeKafkaBatches(data, 0, 1<<20, 64<<20)
	if err != nil || len(recs) != 20 {
		t.Fatal(len(recs), err)
	}
	want := append([]byte{}, recs[3].value...)
	for i := range data {
		data[i] = 0
	}
	if !bytes.Equal(recs[3].value, want) || string(recs[3].key) != "k3" || string(recs[3].headers[0].value) != "v" {
		t.Error("records alias the input")
	}
}

// fetch.bin: none 100-102, control 103, zstd 104-123, lz4 124-128, and
// the first 100 bytes of a gzip batch at 129.
func TestKafkaBatchFetch(t *testing.T) {
	ps := kafkaTestPayloads(t)
	data := kafkaTestFile(t, "fetch.bin")
	check := func(fetch int64, wantFirst int64, wantN int) {
		t.Helper()
		recs, next, err := decodeKafkaBatches(data, fetch, 1<<20, 64<<20)
		if err != nil || next != max(129, fetch) {
			t.Errorf("from %d: next %d, err %v", fetch, next, err)
		}
		var got []int64
		for _, r := range recs {
			got = append(got, r.offset)
		}
		var want []int64
		for o := wantFirst; o < 129; o++ {
			if o != 103 {
				want = append(want, o)
			}
		}
		if len(want) > wantN {
			want = want[:wantN]
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("from %d: offsets %v, want %v", fetch, got, want)
		}
		for _, r := range recs {
			var p []byte
			var i int
			switch {
			case r.offset < 103:
				p, i = ps["kill"], int(r.offset-100)
			case r.offset < 124:
				p, i = ps["median"], int(r.offset-104)
			default:
				p, i = ps["fermi"], int(r.offset-124)
			}
			if !bytes.Equal(r.value, kafkaVariant(p, i)) {
				t.Errorf("from %d: offset %d has the wrong value", fetch, r.offset)
			}
		}
	}
	check(0, 100, 28)
	check(100, 100, 28)
	check(102, 102, 26)
	check(103, 104, 25)
	check(110, 110, 19)
	check(124, 124, 5)
	check(129, 129, 0)
	check(500, 500, 0)

	// Any prefix of the data is a shorter fetch: never an error, the
	// records are a prefix, next is just after the last whole batch.
	full, _, _ := decodeKafkaBatches(data, 0, 1<<20, 64<<20)
	ends := map[int64]bool{0: true, 103: true, 104: true, 124: true, 129: true}
	for cut := 0; cut <= len(data); cut++ {
		if cut%11 != 0 && cut > 80 && cut < len(data)-80 {
			continue // every cut within 80 bytes of either end, an eleventh of the others
		}
		recs, next, err := decodeKafkaBatches(data[:cut], 0, 1<<20, 64<<20)
		if err != nil || !ends[next] || len(recs) > len(full) {
			t.Fatalf("cut %d: %d records, next %d, err %v", cut, len(recs), next, err)
		}
		for i := range recs {
			if recs[i].offset != full[i].offset {
				t.Fatalf("cut %d: record %d differs", cut, i)
			}
		}
	}
}

// kafkaFixCRC rewrites the CRC of the batch at b[0:].
func kafkaFixCRC(b []byte) {
	n := 12 + int(binary.BigEndian.Uint32(b[8:]))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:n], kafkaCRC32C))
}

func TestKafkaBatchBad(t *testing.T) {
	fetch := kafkaTestFile(t, "fetch.bin")
	// Offsets of the batches in fetch.bin.
	var starts []int
	for p := 0; p+12 <= len(fetch); {
		n := 12 + int(binary.BigEndian.Uint32(fetch[p+8:]))
		if p+n > len(fetch) {
			break
		}
		starts = append(starts, p)
		p += n
	}
	if len(starts) != 4 {
		t.Fatalf("fetch.bin has %d whole batches", len(starts))
	}
	zs := starts[2] // the zstd batch, 104-123
	cases := []struct {
		name   string
		edit   func(b []byte)
		tooBig bool
	}{
		{"crc", func(b []byte) { b[zs+70] ^= 1 }, false},
		{"crc field", func(b []byte) { b[zs+18] ^= 1 }, false},
		{"magic", func(b []byte) { b[zs+16] = 1; kafkaFixCRC(b[zs:]) }, false},
		{"corrupt zstd", func(b []byte) { b[zs+80] ^= 0xff; kafkaFixCRC(b[zs:]) }, false},
		{"codec 6", func(b []byte) { b[zs+22] = 0x06; kafkaFixCRC(b[zs:]) }, false},
		{"gzip codec on zstd data", func(b []byte) { b[zs+22] = 0x01; kafkaFixCRC(b[zs:]) }, false},
		{"record count 2^31-1", func(b []byte) { binary.BigEndian.PutUint32(b[zs+57:], 1<<31-1); kafkaFixCRC(b[zs:]) }, false},
		{"record count 21", func(b []byte) { binary.BigEndian.PutUint32(b[zs+57:], 21); kafkaFixCRC(b[zs:]) }, false},
		{"record count 19", func(b []byte) { binary.BigEndian.PutUint32(b[zs+57:], 19); kafkaFixCRC(b[zs:]) }, false},
		{"record count -1", func(b []byte) { binary.BigEndian.PutUint32(b[zs+57:], 0xffffffff); kafkaFixCRC(b[zs:]) }, false},
		{"last offset delta 10", func(b []byte) { binary.BigEndian.PutUint32(b[zs+23:], 10); kafkaFixCRC(b[zs:]) }, false},
		{"last offset delta -1", func(b []byte) { binary.BigEndian.PutUint32(b[zs+23:], 0xffffffff); kafkaFixCRC(b[zs:]) }, false},
	}
	for _, c := range cases {
		b := append([]byte{}, fetch...)
		c.edit(b)
		last := int64(123)
		if c.name == "last offset delta 10" {
			last = 114
		}
		if c.name == "last offset delta -1" {
			last = 104 // a negative delta is reported as 0
		}
		recs, next, err := decodeKafkaBatches(b, 0, 1<<20, 64<<20)
		var be *kafkaBatchError
		if !errors.As(err, &be) {
			t.Errorf("%s: err %v, want a *kafkaBatchError", c.name, err)
			continue
		}
		if be.base != 104 || be.last != last || next != 104 || len(recs) != 3 || be.tooLarge != c.tooBig {
			t.Errorf("%s: %v (base %d last %d tooLarge %v), next %d, %d records", c.name, err, be.base, be.last, be.tooLarge, next, len(recs))
		}
	}
	// The uncompressed batch with a record count of 2^31-1: refused
	// before allocating for it.
	b := append([]byte{}, fetch[:starts[1]]...)
	binary.BigEndian.PutUint32(b[57:], 1<<31-1)
	kafkaFixCRC(b)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, next, err := decodeKafkaBatches(b, 0, 1<<20, 64<<20)
	runtime.ReadMemStats(&ms1)
	var be *kafkaBatchError
	if !errors.As(err, &be) || next != 100 {
		t.Errorf("count 2^31-1 uncompressed: next %d, %v", next, err)
	}
	if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 64<<10 {
		t.Errorf("count 2^31-1 uncompressed: %d bytes allocated", a)
	}
	// Lengths too short or negative.
	for _, blen := range []uint32{0, 9, 48, 0xffffffff} {
		b := append([]byte{}, fetch...)
		binary.BigEndian.PutUint32(b[8:], blen)
		recs, next, err := decodeKafkaBatches(b, 0, 1<<20, 64<<20)
		if !errors.As(err, &be) || next != 100 || len(recs) != 0 {
			t.Errorf("batch length %d: next %d, %d records, %v", blen, next, len(recs), err)
		}
	}
	// An old message set (magic 1) is refused by name.
	old := make([]byte, 12+30)
	binary.BigEndian.PutUint64(old, 7)
	binary.BigEndian.PutUint32(old[8:], 30)
	old[16] = 1
	if _, next, err := decodeKafkaBatches(old, 0, 1<<20, 64<<20); !errors.As(err, &be) || next != 7 || be.reason != "unsupported magic 1" {
		t.Errorf("magic 1: next %d, %v", next, err)
	}
	// A bad batch before the fetch offset: next never goes back.
	if _, next, err := decodeKafkaBatches(old, 20, 1<<20, 64<<20); err == nil || next != 20 {
		t.Errorf("magic 1 below the fetch offset: next %d, %v", next, err)
	}
}

func TestKafkaBatchLimits(t *testing.T) {
	m := kafkaTestPayloads(t)["median"]
	// Values are 4309 or 4310 bytes. maxValue 4300: every record is
	// reported tooLarge without its value; the 20*(4300+512) = 96240 byte
	// decompression limit still holds the batch.
	for _, name := range []string{"none", "gzip", "zstd", "lz4", "snappy"} {
		data := kafkaTestFile(t, "batch_"+name+".bin")
		recs, next, err := decodeKafkaBatches(data, 0, 4300, 64<<20)
		if err != nil || next != 1020 || len(recs) != 20 {
			t.Fatalf("%s maxValue 4300: %d records, next %d, %v", name, len(recs), next, err)
		}
		for i, r := range recs {
			if !r.tooLarge || r.value != nil || r.offset != 1000+int64(i) {
				t.Errorf("%s maxValue 4300: record %d: tooLarge %v, %d bytes", name, i, r.tooLarge, len(r.value))
			}
		}
		recs, _, err = decodeKafkaBatches(data, 0, 4309, 64<<20)
		if err != nil || len(recs) != 20 || recs[9].tooLarge || !recs[10].tooLarge || !bytes.Equal(recs[9].value, kafkaVariant(m, 9)) {
			t.Errorf("%s maxValue 4309: %v", name, err)
		}
	}
	// maxValue 1000: 20*1512 bytes cannot hold the decompressed records,
	// so a compressed batch is too large as a whole.
	for _, name := range []string{"gzip", "zstd", "lz4", "snappy", "xsnappy"} {
		data := kafkaTestFile(t, "batch_"+name+".bin")
		_, next, err := decodeKafkaBatches(data, 0, 1000, 64<<20)
		var be *kafkaBatchError
		if !errors.As(err, &be) || !be.tooLarge || be.base != 1000 || be.last != 1019 || next != 1000 {
			t.Errorf("%s maxValue 1000: next %d, %v", name, next, err)
		}
		// And maxBatch caps it too.
		_, _, err = decodeKafkaBatches(data, 0, 1<<20, 50000)
		if !errors.As(err, &be) || !be.tooLarge {
			t.Errorf("%s maxBatch 50000: %v", name, err)
		}
	}
}

func TestKafkaBatchGapsAndTimes(t *testing.T) {
	m := kafkaTestPayloads(t)["median"]
	recs, next, err := decodeKafkaBatches(kafkaTestFile(t, "batch_gaps.bin"), 0, 1<<20, 1<<20)
	if err != nil || next != 208 || len(recs) != 3 {
		t.Fatalf("gaps: %d records, next %d, %v", len(recs), next, err)
	}
	for j, i := range []int{0, 2, 5} {
		if recs[j].offset != 200+int64(i) || !bytes.Equal(recs[j].value, kafkaVariant(m, i)) {
			t.Errorf("gaps: record %d: offset %d", j, recs[j].offset)
		}
	}
	if !recs[2].timestamp.Equal(time.UnixMilli(1700000000050)) {
		t.Errorf("gaps: timestamp %v", recs[2].timestamp)
	}
	recs, _, err = decodeKafkaBatches(kafkaTestFile(t, "batch_gaps.bin"), 203, 1<<20, 1<<20)
	if err != nil || len(recs) != 1 || recs[0].offset != 205 {
		t.Errorf("gaps from 203: %v %v", recs, err)
	}
	recs, next, err = decodeKafkaBatches(kafkaTestFile(t, "batch_logappend.bin"), 0, 1<<20, 1<<20)
	if err != nil || next != 302 || len(recs) != 2 || string(recs[1].value) != "b" {
		t.Fatalf("log append: %v, next %d, %v", recs, next, err)
	}
	for _, r := range recs {
		if !r.timestamp.Equal(time.UnixMilli(1700000000999)) {
			t.Errorf("log append time: %v", r.timestamp)
		}
	}
}

// TestKafkaAppendBatch: appendKafkaBatch's output, checked once with
// franz-go's kmsg (testdata/kafka/own_*.bin, PROVENANCE.md), is what it
// still produces, and decodes here.
func TestKafkaAppendBatch(t *testing.T) {
	m := kafkaTestPayloads(t)["median"]
	var values [][]byte
	for i := range 20 {
		values = append(values, kafkaVariant(m, i))
	}
	now := time.UnixMilli(1764620000123)
	for _, c := range []struct {
		name  string
		codec int8
	}{{"none", kafkaCodecNone}, {"gzip", kafkaCodecGzip}} {
		b, err := appendKafkaBatch([]byte("prefix"), values, c.codec, now)
		if err != nil || string(b[:6]) != "prefix" {
			t.Fatal(err)
		}
		b = b[6:]
		file := filepath.Join("testdata/kafka", "own_"+c.name+".bin")
		if os.Getenv("KAFKA_WRITE_OWN") == "1" {
			if err := os.WriteFile(file, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		golden := kafkaTestFile(t, "own_"+c.name+".bin")
		// gzip's bytes may differ between Go releases: compare the
		// header, and the decoded records.
		if c.codec == kafkaCodecNone && !bytes.Equal(b, golden) {
			t.Errorf("own_none.bin: appendKafkaBatch output changed")
		}
		if !bytes.Equal(b[21:61], golden[21:61]) || !bytes.Equal(b[:8], golden[:8]) || !bytes.Equal(b[12:17], golden[12:17]) {
			t.Errorf("own_%s.bin: header changed", c.name)
		}
		for _, data := range [][]byte{b, golden} {
			recs, next, err := decodeKafkaBatches(data, 0, 1<<20, 1<<20)
			if err != nil || next != 20 || len(recs) != 20 {
				t.Fatalf("%s: %d records, next %d, %v", c.name, len(recs), next, err)
			}
			for i, r := range recs {
				if r.offset != int64(i) || !bytes.Equal(r.value, values[i]) || r.key != nil || r.headers != nil || !r.timestamp.Equal(now) {
					t.Errorf("%s: record %d: %+v", c.name, i, r)
				}
			}
		}
	}
	// Empty values, null-free: a zero-length value is "" not null.
	b, err := appendKafkaBatch(nil, [][]byte{{}, []byte("x")}, kafkaCodecNone, now)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := decodeKafkaBatches(b, 0, 10, 1000)
	if err != nil || len(recs) != 2 || recs[0].value == nil || len(recs[0].value) != 0 || string(recs[1].value) != "x" {
		t.Errorf("empty value: %+v %v", recs, err)
	}
	if _, err := appendKafkaBatch(nil, nil, kafkaCodecNone, now); err == nil {
		t.Error("empty batch accepted")
	}
	if _, err := appendKafkaBatch(nil, values, kafkaCodecZstd, now); err == nil {
		t.Error("zstd produce accepted")
	}
}
