// kafka_codec.go is a STAND-IN for the record-batch codecs (the lead replaces
// it at merge with the real file): codec none and gzip only, with the exact
// names and signatures of the agreed API. Decompression is bounded by limit.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

const (
	kafkaCodecNone   int8 = 0
	kafkaCodecGzip   int8 = 1
	kafkaCodecSnappy int8 = 2
	kafkaCodecLZ4    int8 = 3
	kafkaCodecZstd   int8 = 4
)

var errKafkaTooLarge = errors.New("kafka: decompressed data too large")

func kafkaDecompress(codec int8, src []byte, limit int) ([]byte, error) {
	switch codec {
	case kafkaCodecNone:
		if len(src) > limit {
			return nil, errKafkaTooLarge
		}
		return src, nil
	case kafkaCodecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if len(out) > limit {
			return nil, errKafkaTooLarge
		}
		return out, nil
	}
	return nil, fmt.Errorf("compression codec %d unsupported", codec)
}

func kafkaCompress(codec int8, src []byte) ([]byte, error) {
	switch codec {
	case kafkaCodecNone:
		return src, nil
	case kafkaCodecGzip:
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(src)
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("compression codec %d unsupported for producing", codec)
}
