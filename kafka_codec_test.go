package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// kafkaTestPayloads rebuilds the inputs the vectors in testdata/kafka were
// made from (testdata/kafka/PROVENANCE.md).
func kafkaTestPayloads(t testing.TB) map[string][]byte {
	t.Helper()
	rd := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m := map[string][]byte{
		"median": rd("benchdata/median.xml"),
		"fermi":  rd("testdata/corpus/voevents/fx__voevent2dict__gcn.classic.voevent.FERMI_POINTDIR.xml"),
		"lvc":    rd("testdata/corpus/voevents/fx__voevent2dict__gcn.classic.voevent.LVC_INITIAL.xml"),
		"kill":   rd("testdata/corpus/voevents/fx__pygcn__kill_socket.xml"),
	}
	ents, err := os.ReadDir("testdata/corpus/voevents")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var big []byte
	for _, n := range names {
		big = append(big, rd(filepath.Join("testdata/corpus/voevents", n))...)
	}
	m["big"] = big[:300000]
	var r []byte
	for i := uint32(0); len(r) < 70000; i++ {
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], i)
		h := sha256.Sum256(c[:])
		r = append(r, h[:]...)
	}
	m["rand"] = r[:70000]
	return m
}

func kafkaTestFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/kafka", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kafkaTestVectors maps each compressed vector to its codec and payload.
func kafkaTestVectors() []struct {
	file, payload string
	codec         int8
} {
	var v []struct {
		file, payload string
		codec         int8
	}
	add := func(file, payload string, codec int8) {
		v = append(v, struct {
			file, payload string
			codec         int8
		}{file, payload, codec})
	}
	for _, p := range []string{"median", "fermi", "lvc", "kill", "big"} {
		add(p+".gz", p, kafkaCodecGzip)
		add(p+".snappy", p, kafkaCodecSnappy)
		add(p+".s2snappy", p, kafkaCodecSnappy)
		add(p+".xsnappy", p, kafkaCodecSnappy)
		add(p+".lz4", p, kafkaCodecLZ4)
		add(p+".zst", p, kafkaCodecZstd)
	}
	add("big.B4D.lz4", "big", kafkaCodecLZ4)
	add("big.B4X.lz4", "big", kafkaCodecLZ4)
	add("big.B5.lz4", "big", kafkaCodecLZ4)
	add("rand.lz4", "rand", kafkaCodecLZ4)
	add("rand.snappy", "rand", kafkaCodecSnappy)
	add("big.19.zst", "big", kafkaCodecZstd)
	add("median.nocheck.zst", "median", kafkaCodecZstd)
	add("median.kp.zst", "median", kafkaCodecZstd)
	add("rand.zst", "rand", kafkaCodecZstd)
	return v
}

func TestKafkaCodecVectors(t *testing.T) {
	ps := kafkaTestPayloads(t)
	for _, v := range kafkaTestVectors() {
		src := kafkaTestFile(t, v.file)
		want := ps[v.payload]
		got, err := kafkaDecompress(v.codec, src, len(want))
		if err != nil {
			t.Errorf("%s: %v", v.file, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: decoded %d bytes, not the payload's %d", v.file, len(got), len(want))
		}
		// One byte less room is too large, and says so.
		if _, err := kafkaDecompress(v.codec, src, len(want)-1); !errors.Is(err, errKafkaTooLarge) {
			t.Errorf("%s with limit %d: err %v, want errKafkaTooLarge", v.file, len(want)-1, err)
		}
	}
}

func TestKafkaCodecConcatenated(t *testing.T) {
	ps := kafkaTestPayloads(t)
	want := append(append([]byte{}, ps["median"]...), ps["kill"]...)
	skip := []byte{0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0, 1, 2, 3} // skippable frame
	cases := []struct {
		codec int8
		src   []byte
	}{
		{kafkaCodecGzip, append(kafkaTestFile(t, "median.gz"), kafkaTestFile(t, "kill.gz")...)},
		{kafkaCodecLZ4, bytes.Join([][]byte{kafkaTestFile(t, "median.lz4"), skip, kafkaTestFile(t, "kill.lz4")}, nil)},
		{kafkaCodecZstd, append(kafkaTestFile(t, "median.zst"), kafkaTestFile(t, "kill.zst")...)},
		// xerial blocks concatenate as well: the kill block after median's.
		{kafkaCodecSnappy, append(kafkaTestFile(t, "median.xsnappy"), kafkaTestFile(t, "kill.xsnappy")[16:]...)},
	}
	for _, c := range cases {
		got, err := kafkaDecompress(c.codec, c.src, 1<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v", kafkaCodecName(c.codec), len(got), err)
		}
	}
}

func TestKafkaCodecMisc(t *testing.T) {
	if _, err := kafkaDecompress(5, []byte("x"), 10); err == nil || errors.Is(err, errKafkaTooLarge) {
		t.Errorf("codec 5: %v", err)
	}
	if b, err := kafkaDecompress(kafkaCodecNone, []byte("abc"), 3); err != nil || string(b) != "abc" {
		t.Errorf("none: %q %v", b, err)
	}
	if _, err := kafkaDecompress(kafkaCodecNone, []byte("abc"), 2); !errors.Is(err, errKafkaTooLarge) {
		t.Errorf("none over limit: %v", err)
	}
	for _, codec := range []int8{kafkaCodecGzip, kafkaCodecSnappy, kafkaCodecLZ4, kafkaCodecZstd} {
		if _, err := kafkaDecompress(codec, nil, 100); err == nil {
			t.Errorf("%s: empty input accepted", kafkaCodecName(codec))
		}
	}
	src := []byte("a VOEvent, or anything")
	for _, codec := range []int8{kafkaCodecNone, kafkaCodecGzip} {
		c, err := kafkaCompress(codec, src)
		if err != nil {
			t.Fatal(err)
		}
		d, err := kafkaDecompress(codec, c, len(src))
		if err != nil || !bytes.Equal(d, src) {
			t.Errorf("%s round trip: %q %v", kafkaCodecName(codec), d, err)
		}
	}
	if _, err := kafkaCompress(kafkaCodecZstd, src); err == nil {
		t.Error("zstd compression claimed")
	}
}

// TestKafkaXXH32 checks the hash on the published values; the lz4 vectors
// check it on long inputs (content and block checksums).
func TestKafkaXXH32(t *testing.T) {
	for _, c := range []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0x02CC5D05},
		{"a", 0, 0x550D7456},
		{"abc", 0, 0x32D153FF},
	} {
		if got := kafkaXXH32([]byte(c.in), c.seed); got != c.want {
			t.Errorf("xxh32(%q, %d) = %#x, want %#x", c.in, c.seed, got, c.want)
		}
	}
}

// TestKafkaZstdChSize shows that debug/elf ignores ch_size: any value
// decodes the same, so a lying or absent size never limits or allocates.
func TestKafkaZstdChSize(t *testing.T) {
	ps := kafkaTestPayloads(t)
	src := kafkaTestFile(t, "median.zst")
	for _, cs := range []uint64{0, 1, uint64(len(ps["median"]) - 1), uint64(len(ps["median"])), 1 << 62, 1<<64 - 1} {
		got, err := kafkaUnzstdChSize(src, 1<<20, cs)
		if err != nil || !bytes.Equal(got, ps["median"]) {
			t.Errorf("ch_size %d: %d bytes, %v", cs, len(got), err)
		}
	}
}

// kafkaBomb checks that decoding src with limit fails with
// errKafkaTooLarge, having allocated less than maxAlloc bytes.
func kafkaBomb(t *testing.T, name string, codec int8, src []byte, limit int, maxAlloc uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	out, err := kafkaDecompress(codec, src, limit)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%s: %d bytes in, limit %d: %v after %v, %d bytes allocated", name, len(src), limit, err, took, alloc)
	if !errors.Is(err, errKafkaTooLarge) || out != nil {
		t.Errorf("%s: %d bytes out, err %v, want errKafkaTooLarge", name, len(out), err)
	}
	if alloc > maxAlloc {
		t.Errorf("%s: allocated %d bytes, more than %d", name, alloc, maxAlloc)
	}
	if took > 10*time.Second {
		t.Errorf("%s: took %v", name, took)
	}
}

// TestKafkaBombs feeds each codec a 1 GiB (or, snappy, 64 MiB) run of
// zeros made by a real encoder, with a 1 MiB limit: each stops at the
// limit, having allocated under 2*limit plus the decoder's own state.
func TestKafkaBombs(t *testing.T) {
	const limit = 1 << 20
	// gzip: 64 members of 16 MiB of zeros.
	kafkaBomb(t, "gzip 1 GiB", kafkaCodecGzip, bytes.Repeat(kafkaTestFile(t, "zeros16m.gz"), 64), limit, 2*limit+256<<10)
	// lz4: 256 frames of 4 MiB of zeros.
	kafkaBomb(t, "lz4 1 GiB", kafkaCodecLZ4, bytes.Repeat(kafkaTestFile(t, "zeros4m.lz4"), 256), limit, 2*limit+64<<10)
	// lz4 that really decodes up to the limit: ten linked-block frames
	// of the 300 kB corpus (the content size of each is within the limit).
	kafkaBomb(t, "lz4 10 x 300 kB", kafkaCodecLZ4, bytes.Repeat(kafkaTestFile(t, "big.B4D.lz4"), 10), limit, 2*limit+64<<10)
	kafkaBomb(t, "lz4 10 x 300 kB, pierrec", kafkaCodecLZ4, bytes.Repeat(kafkaTestFile(t, "big.lz4"), 10), limit, 2*limit+64<<10)
	kafkaBomb(t, "zstd 10 x 300 kB", kafkaCodecZstd, bytes.Repeat(kafkaTestFile(t, "big.zst"), 10), limit, 2*limit+1<<20)
	// zstd: one frame of 1 GiB of zeros, straight from the zstd CLI. On
	// top of the output, internal/zstd holds its window (2 MiB for this
	// frame, 8 MiB at most) and block buffers.
	kafkaBomb(t, "zstd 1 GiB", kafkaCodecZstd, kafkaTestFile(t, "zeros1g.zst"), limit, 2*limit+4<<20)
	// snappy, xerial-framed: 256 blocks of 256 KiB of zeros.
	blk := kafkaTestFile(t, "zeros256k.snappy")
	x := append([]byte{}, kafkaXerialMagic...)
	x = append(x, 0, 0, 0, 1, 0, 0, 0, 1)
	for range 256 {
		x = binary.BigEndian.AppendUint32(x, uint32(len(blk)))
		x = append(x, blk...)
	}
	kafkaBomb(t, "xerial snappy 64 MiB", kafkaCodecSnappy, x, limit, 2*limit+64<<10)
	// Raw snappy declaring 1 GiB: refused before decoding.
	raw := binary.AppendUvarint(nil, 1<<30)
	raw = append(raw, blk[3:]...)
	kafkaBomb(t, "raw snappy declaring 1 GiB", kafkaCodecSnappy, raw, limit, 16<<10)
	// lz4 declaring a 1 TiB content size: refused at the header.
	f := kafkaTestFile(t, "big.B4D.lz4")
	if f[4]&0x08 == 0 {
		t.Fatal("big.B4D.lz4 has no content size")
	}
	f = append([]byte{}, f...)
	binary.LittleEndian.PutUint64(f[6:], 1<<40)
	f[14] = byte(kafkaXXH32(f[4:14], 0) >> 8)
	kafkaBomb(t, "lz4 declaring 1 TiB", kafkaCodecLZ4, f, limit, 16<<10)
}

// TestKafkaCodecCorrupt truncates and flips bits of every small vector:
// never a panic, never output over the limit, truncation is always an
// error, and a flip in a checksummed stream either fails or decodes the
// original (a flip in an unused header field).
func TestKafkaCodecCorrupt(t *testing.T) {
	ps := kafkaTestPayloads(t)
	for _, v := range kafkaTestVectors() {
		src := kafkaTestFile(t, v.file)
		if len(src) > 4000 {
			continue // the small ones cover every path; keep it quick
		}
		for _, cut := range []int{1, 5, 9, len(src) / 2, len(src) - 1} {
			if cut >= len(src) {
				continue
			}
			out, err := kafkaDecompress(v.codec, src[:cut], 1<<20)
			if err == nil && !(strings.HasSuffix(v.file, ".xsnappy") && cut == len(src)/2) {
				t.Errorf("%s cut at %d: no error (%d bytes)", v.file, cut, len(out))
			}
		}
		checked := v.codec != kafkaCodecSnappy && v.file != "median.nocheck.zst"
		c := append([]byte{}, src...)
		for i := range c {
			if i >= 64 && i%5 != 0 {
				continue // every header byte, a fifth of the rest
			}
			for _, bit := range []byte{0x01, 0x80} {
				c[i] ^= bit
				out, err := kafkaDecompress(v.codec, c, 1<<16)
				if len(out) > 1<<16 {
					t.Fatalf("%s flip %d: %d bytes out", v.file, i, len(out))
				}
				if err == nil && checked && !bytes.Equal(out, ps[v.payload]) {
					t.Errorf("%s: flip of byte %d bit %#x decodes to other data", v.file, i, bit)
				}
				c[i] ^= bit
			}
		}
	}
	// Hand-made corruptions the flips may not reach.
	for i, c := range []struct {
		codec int8
		src   []byte
	}{
		{kafkaCodecSnappy, []byte{5, 0x0d, 0x01}},                // copy-1 with nothing written
		{kafkaCodecSnappy, []byte{5, 0x00, 'a', 0x01, 0x00}},     // copy offset 0
		{kafkaCodecSnappy, []byte{5, 0x00, 'a', 0x01, 0x02}},     // copy offset past start
		{kafkaCodecSnappy, []byte{2, 0x08, 'a', 'b', 'c'}},       // literal past declared length
		{kafkaCodecSnappy, []byte{0xff, 0xff, 0xff, 0xff, 0x7f}}, // length over 2^32
		{kafkaCodecSnappy, []byte{0xe8, 0x07, 0x00, 'a'}},        // 1000 bytes from 2
		{kafkaCodecSnappy, append(append([]byte{}, kafkaXerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1)},
		{kafkaCodecSnappy, append(append([]byte{}, kafkaXerialMagic...), 0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0, 0, 0)},
		{kafkaCodecLZ4, []byte{0x04, 0x22, 0x4d, 0x18}},
		{kafkaCodecLZ4, []byte{0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0}}, // legacy magic
		{kafkaCodecLZ4, []byte{0x5A, 0x2A, 0x4D, 0x18, 9, 0, 0, 0}}, // skippable overrun
		{kafkaCodecZstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{kafkaCodecZstd, []byte("not zstd at all")},
		{kafkaCodecGzip, []byte("not gzip at all")},
	} {
		out, err := kafkaDecompress(c.codec, c.src, 1<<20)
		if err == nil || errors.Is(err, errKafkaTooLarge) {
			t.Errorf("case %d (%s): %d bytes, err %v", i, kafkaCodecName(c.codec), len(out), err)
		}
	}
}

// TestKafkaLZ4Hand exercises block forms the encoders rarely emit: a
// stored block, a match overlapping its own output, linked blocks
// reaching into the previous block, and an independent block that may
// not.
func TestKafkaLZ4Hand(t *testing.T) {
	frame := func(flg byte, blocks ...[]byte) []byte {
		b := []byte{0x04, 0x22, 0x4d, 0x18, flg, 0x40}
		b = append(b, byte(kafkaXXH32(b[4:6], 0)>>8))
		for _, blk := range blocks {
			b = append(b, blk...)
		}
		return append(b, 0, 0, 0, 0)
	}
	block := func(stored bool, data ...byte) []byte {
		n := uint32(len(data))
		if stored {
			n |= 1 << 31
		}
		return append(binary.LittleEndian.AppendUint32(nil, n), data...)
	}
	// "ab" then a match of 10 at offset 2: "abababababab".
	seq := []byte{0x26, 'a', 'b', 2, 0}
	seqEnd := append(append([]byte{}, seq...), 0x10, 'z') // then literal z
	cases := []struct {
		src  []byte
		want string
		ok   bool
	}{
		{frame(0x60, block(true, 'x', 'y')), "xy", true},
		{frame(0x60, block(false, seqEnd...)), "ababababababz", true},
		// Linked (FLG bit 5 clear): block 2 copies 4 bytes from block 1.
		{frame(0x40, block(true, 'q', 'r', 's', 't'), block(false, 0x00, 4, 0, 0x10, '!')), "qrstqrst!", true},
		// Independent: the same copy is out of range.
		{frame(0x60, block(true, 'q', 'r', 's', 't'), block(false, 0x00, 4, 0, 0x10, '!')), "", false},
		// A match that ends the block (the last sequence must be literals).
		{frame(0x60, block(false, seq...)), "", false},
	}
	for i, c := range cases {
		got, err := kafkaDecompress(kafkaCodecLZ4, c.src, 100)
		if c.ok && (err != nil || string(got) != c.want) {
			t.Errorf("case %d: %q %v, want %q", i, got, err, c.want)
		}
		if !c.ok && err == nil {
			t.Errorf("case %d: %q, want an error", i, got)
		}
	}
}

func TestKafkaReadAllChunks(t *testing.T) {
	// Output spanning many chunks joins correctly; the limit is exact.
	src := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB
	for _, hint := range []int{0, 100, len(src), 1 << 30} {
		got, err := kafkaReadAll(bytes.NewReader(src), len(src), hint)
		if err != nil || !bytes.Equal(got, src) {
			t.Errorf("hint %d: %d bytes, %v", hint, len(got), err)
		}
		if _, err := kafkaReadAll(bytes.NewReader(src), len(src)-1, hint); !errors.Is(err, errKafkaTooLarge) {
			t.Errorf("hint %d, limit-1: %v", hint, err)
		}
	}
	got, err := kafkaReadAll(bytes.NewReader(nil), 0, 0)
	if err != nil || len(got) != 0 {
		t.Errorf("empty: %q %v", got, err)
	}
}

// TestKafkaZstdWindowPatch: a frame from the zstd CLI reading stdin
// declares a 2 MiB window whatever its size; the scan patches it down to
// what the frame can produce, and the frame still decodes exactly.
func TestKafkaZstdWindowPatch(t *testing.T) {
	ps := kafkaTestPayloads(t)
	src := kafkaTestFile(t, "big.zst")
	patch, _, err := kafkaZstdScan(src, 64<<20)
	if err != nil || len(patch) != 1 || patch[0].at != 5 {
		t.Fatalf("patches %v, %v", patch, err)
	}
	from, to := kafkaZstdWindow(src[5]), kafkaZstdWindow(patch[0].b)
	t.Logf("window %d patched to %d", from, to)
	if to >= from || to < uint64(len(ps["big"])) {
		t.Errorf("window %d patched to %d", from, to)
	}
	got, err := kafkaDecompress(kafkaCodecZstd, src, 64<<20)
	if err != nil || !bytes.Equal(got, ps["big"]) {
		t.Errorf("%d bytes, %v", len(got), err)
	}
	for _, w := range []uint64{1 << 10, 1<<10 + 1, 100000, 128 << 10, 8 << 20} {
		if d := kafkaZstdDescriptor(w); kafkaZstdWindow(d) < w || (d > 0 && kafkaZstdWindow(d-1) >= w) {
			t.Errorf("descriptor for %d: %d (%d)", w, d, kafkaZstdWindow(d))
		}
	}
}

// TestKafkaZstdManyFrames: 50,000 tiny frames, each declaring a window
// to be patched, decode in linear time (the patches are searched, not
// scanned on every read).
func TestKafkaZstdManyFrames(t *testing.T) {
	// A frame with a window descriptor of 8 MiB (0x58), no checksum, one
	// empty raw last block.
	frame := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x01, 0x00, 0x00}
	src := bytes.Repeat(frame, 50000)
	patch, _, err := kafkaZstdScan(src, 1<<20)
	if err != nil || len(patch) != 50000 {
		t.Fatalf("%d patches, %v", len(patch), err)
	}
	start := time.Now()
	out, err := kafkaDecompress(kafkaCodecZstd, src, 1<<20)
	if err != nil || len(out) != 0 {
		t.Fatalf("%d bytes, %v", len(out), err)
	}
	t.Logf("50000 frames in %v", time.Since(start))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	// And with content: an RLE block of 100 'a' per frame.
	rle := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x23, 0x03, 0x00, 'a'}
	out, err = kafkaDecompress(kafkaCodecZstd, bytes.Repeat(rle, 1000), 1<<20)
	if err != nil || !bytes.Equal(out, bytes.Repeat([]byte("a"), 100*1000)) {
		t.Errorf("RLE frames: %d bytes, %v", len(out), err)
	}
}
