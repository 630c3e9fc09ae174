// kafka_codec.go owns the compression codecs of Kafka record batches: the
// codec ids (attribute bits 0-2), kafkaDecompress for the consumer and
// kafkaCompress for the producer. gzip is compress/gzip; snappy
// (kafka_snappy.go), lz4 (kafka_lz4.go) are written here; zstd goes through
// the standard library's decoder by way of debug/elf (kafka_zstd.go).
//
// Invariants: decoding is bounded. Every decoder stops as soon as its output
// would pass the caller's limit and fails with an error wrapping
// errKafkaTooLarge. Output buffers cost at most limit+1 bytes for gzip and
// zstd (read in chunks, kafkaReadAll) and under 2*(limit+1) in all for
// snappy and lz4 (kafkaGrow), plus the decoder's own state: flate's
// window, or for zstd a window of at most max(limit, 128 KiB) and 8 MiB
// and its block buffers. Hints taken from the input (gzip ISIZE, lz4
// content size, zstd frame content size, snappy length) are believed only
// up to the limit and to what the input's size can justify. Corrupt input
// gives a descriptive error wrapping errKafkaCorrupt (or the gzip
// package's), never a panic. Work is linear in input plus output size.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Codec ids, attribute bits 0-2 of a record batch.
const (
	kafkaCodecNone   int8 = 0
	kafkaCodecGzip   int8 = 1
	kafkaCodecSnappy int8 = 2
	kafkaCodecLZ4    int8 = 3
	kafkaCodecZstd   int8 = 4
)

var (
	// errKafkaTooLarge: decompressed data would exceed the caller's limit.
	errKafkaTooLarge = errors.New("decompressed data over the size limit")
	// errKafkaCorrupt: compressed data that does not decode.
	errKafkaCorrupt = errors.New("corrupt data")
)

// kafkaCodecName names a codec id for messages.
func kafkaCodecName(codec int8) string {
	switch codec {
	case kafkaCodecNone:
		return "none"
	case kafkaCodecGzip:
		return "gzip"
	case kafkaCodecSnappy:
		return "snappy"
	case kafkaCodecLZ4:
		return "lz4"
	case kafkaCodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", codec)
}

// kafkaDecompress decodes src compressed with codec; it fails with an error
// wrapping errKafkaTooLarge as soon as the output would exceed limit bytes
// (it stops decoding then), and with a descriptive error for corrupt input
// or an unknown codec. For kafkaCodecNone it returns src itself.
func kafkaDecompress(codec int8, src []byte, limit int) ([]byte, error) {
	if limit < 0 {
		limit = 0
	}
	var out []byte
	var err error
	switch codec {
	case kafkaCodecNone:
		if len(src) > limit {
			return nil, fmt.Errorf("kafka: %d bytes uncompressed: %w", len(src), errKafkaTooLarge)
		}
		return src, nil
	case kafkaCodecGzip:
		out, err = kafkaGunzip(src, limit)
	case kafkaCodecSnappy:
		out, err = kafkaUnsnappy(src, limit)
	case kafkaCodecLZ4:
		out, err = kafkaUnlz4(src, limit)
	case kafkaCodecZstd:
		out, err = kafkaUnzstd(src, limit)
	default:
		return nil, fmt.Errorf("kafka: unknown compression codec %d", codec)
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: %s: %w", kafkaCodecName(codec), err)
	}
	return out, nil
}

// kafkaCompress is for the producer and tests: none and gzip only.
func kafkaCompress(codec int8, src []byte) ([]byte, error) {
	switch codec {
	case kafkaCodecNone:
		return src, nil
	case kafkaCodecGzip:
		var b bytes.Buffer
		w, err := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(src); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("kafka: compressing with %s is not supported", kafkaCodecName(codec))
}

// kafkaGunzip decodes one or more concatenated gzip members.
func kafkaGunzip(src []byte, limit int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		return nil, err
	}
	// ISIZE, the last member's size mod 2^32, is a hint; deflate cannot
	// expand more than 1032 times.
	hint := 0
	if len(src) >= 18 {
		hint = int(binary.LittleEndian.Uint32(src[len(src)-4:]))
	}
	out, err := kafkaReadAll(zr, limit, min(hint, 1032*len(src)))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// kafkaReadAll reads r to EOF, failing with errKafkaTooLarge once more than
// limit bytes come out. hint, when positive, sizes the first buffer (so an
// exact hint costs one allocation). Output is gathered in chunks that are
// never copied while reading, so a bomb costs at most limit+1 bytes of
// buffers; a success costs at most twice its size.
func kafkaReadAll(r io.Reader, limit, hint int) ([]byte, error) {
	const minChunk, maxChunk = 4 << 10, 1 << 20
	var chunks [][]byte
	total := 0
	next := max(hint+1, minChunk)
	for {
		room := limit + 1 - total // reading one byte past limit detects overflow
		size := min(next, room)
		buf := make([]byte, size)
		n, err := kafkaFill(r, buf)
		total += n
		if total > limit {
			return nil, errKafkaTooLarge
		}
		chunks = append(chunks, buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		next = min(max(2*size, minChunk), maxChunk)
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	out := make([]byte, 0, total)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}

// kafkaFill reads into buf until it is full or r fails; unlike io.ReadFull
// it passes r's own io.ErrUnexpectedEOF (a truncated stream) through and
// reports a clean end as io.EOF.
func kafkaFill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// kafkaGrow returns b with room for need more bytes, for output whose final
// size is unknown and at most limit+1 (the caller keeps len(b)+need within
// that). Capacity doubles, and jumps straight to limit+1 once doubling
// would pass half of it, so a stream that runs into the limit has
// allocated less than 2*(limit+1) bytes in all.
func kafkaGrow(b []byte, need, limit int) []byte {
	if cap(b)-len(b) >= need {
		return b
	}
	capMax := limit + 1
	n := max(len(b)+need, 2*cap(b), 4<<10)
	if n > capMax/2 {
		n = max(capMax, len(b)+need)
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}
