package main

import (
	"testing"
)

// Decode benchmarks on the generated batches of 20 median-size VOEvents
// (testdata/kafka/batch_*.bin, 86,418 bytes of records uncompressed):
// MB/s is of the decompressed records. The budget is zstd within 2x
// gzip's time for the same batch.

func kafkaBenchBatch(b *testing.B, name string) {
	data := kafkaTestFile(b, "batch_"+name+".bin")
	recs, _, err := decodeKafkaBatches(data, 0, 1<<20, 64<<20)
	if err != nil || len(recs) != 20 {
		b.Fatal(len(recs), err)
	}
	size := 0
	for _, r := range recs {
		size += len(r.value)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := decodeKafkaBatches(data, 0, 1<<20, 64<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKafkaDecodeZstd(b *testing.B) { kafkaBenchBatch(b, "zstd") }
func BenchmarkKafkaDecodeGzip(b *testing.B) { kafkaBenchBatch(b, "gzip") }
func BenchmarkKafkaSnappy(b *testing.B)     { kafkaBenchBatch(b, "snappy") }
func BenchmarkKafkaLZ4(b *testing.B)        { kafkaBenchBatch(b, "lz4") }
func BenchmarkKafkaDecodeNone(b *testing.B) { kafkaBenchBatch(b, "none") }
