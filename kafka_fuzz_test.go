package main

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

// Fuzz targets for the Kafka codecs and record batches: hostile input
// never panics, output never passes the limit, and batches keep their
// promises (offsets increasing from the fetch offset, values within
// maxValue, errors typed). Seeds in testdata/fuzz/Fuzz*/ are real-encoder
// vectors from testdata/kafka.

const kafkaFuzzLimit = 1 << 18

func kafkaFuzzCodec(f *testing.F, codec int8) {
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := kafkaDecompress(codec, src, kafkaFuzzLimit)
		if len(out) > kafkaFuzzLimit {
			t.Fatalf("%d bytes out, limit %d", len(out), kafkaFuzzLimit)
		}
		if err != nil && out != nil {
			t.Fatalf("output with an error: %v", err)
		}
		if err == nil && out == nil {
			t.Fatal("nil output without an error")
		}
	})
}

func FuzzSnappy(f *testing.F)    { kafkaFuzzCodec(f, kafkaCodecSnappy) }
func FuzzLZ4(f *testing.F)       { kafkaFuzzCodec(f, kafkaCodecLZ4) }
func FuzzZstd(f *testing.F)      { kafkaFuzzCodec(f, kafkaCodecZstd) }
func FuzzKafkaGzip(f *testing.F) { kafkaFuzzCodec(f, kafkaCodecGzip) }

func FuzzKafkaRecordBatch(f *testing.F) {
	const maxValue, maxBatch = 8 << 10, 1 << 18
	f.Fuzz(func(t *testing.T, data []byte, fetch int64) {
		kafkaFuzzBatches(t, data, fetch, maxValue, maxBatch)
		// Most mutations break a CRC; decode again with the CRCs made
		// right so the fuzzer reaches the records and the codecs.
		kafkaFuzzBatches(t, kafkaFuzzFixCRCs(data), fetch, maxValue, maxBatch)
	})
}

// kafkaFuzzFixCRCs returns a copy of data with each whole batch's CRC-32C
// recomputed.
func kafkaFuzzFixCRCs(data []byte) []byte {
	b := append([]byte(nil), data...)
	for p := 0; len(b)-p >= kafkaBatchHeaderSize; {
		n := int64(int32(binary.BigEndian.Uint32(b[p+8:])))
		if n < kafkaBatchHeaderSize-kafkaBatchLenOffset || n > int64(len(b)-p-kafkaBatchLenOffset) {
			break
		}
		end := p + kafkaBatchLenOffset + int(n)
		binary.BigEndian.PutUint32(b[p+17:], crc32.Checksum(b[p+kafkaBatchCRCStart:end], kafkaCRC32C))
		p = end
	}
	return b
}

func kafkaFuzzBatches(t *testing.T, data []byte, fetch int64, maxValue, maxBatch int) {
	{
		recs, next, err := decodeKafkaBatches(data, fetch, maxValue, maxBatch)
		if next < fetch {
			t.Fatalf("next %d below the fetch offset %d", next, fetch)
		}
		prev := fetch - 1
		for _, r := range recs {
			if r.offset <= prev {
				t.Fatalf("offset %d after %d", r.offset, prev)
			}
			prev = r.offset
			if len(r.value) > maxValue || (r.tooLarge && r.value != nil) {
				t.Fatalf("value of %d bytes, tooLarge %v", len(r.value), r.tooLarge)
			}
		}
		if err == nil && len(recs) > 0 && next <= prev {
			t.Fatalf("next %d not past the last record %d", next, prev)
		}
		if err != nil {
			var be *kafkaBatchError
			if !errors.As(err, &be) {
				t.Fatalf("untyped error %v", err)
			}
			if be.last < be.base {
				t.Fatalf("batch error %d-%d", be.base, be.last)
			}
			if next < be.base && be.base >= fetch {
				t.Fatalf("next %d before the bad batch %d", next, be.base)
			}
			if len(recs) > 0 && next <= prev {
				t.Fatalf("next %d not past the last record %d", next, prev)
			}
		}
	}
}
