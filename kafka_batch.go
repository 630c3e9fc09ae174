// kafka_batch.go is a STAND-IN for record-batch v2 decoding and encoding (the
// lead replaces it at merge with the real file), with the agreed API: records
// at or past fetchOffset, control batches skipped, CRC-32C checked, a partial
// trailing batch ignored, a bad batch reported as *kafkaBatchError.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

type kafkaHeader struct {
	key   string
	value []byte
}

type kafkaRecord struct {
	offset     int64
	timestamp  time.Time
	key, value []byte
	headers    []kafkaHeader
	tooLarge   bool
}

type kafkaBatchError struct {
	base, last int64
	tooLarge   bool
	reason     string
}

func (e *kafkaBatchError) Error() string {
	return fmt.Sprintf("kafka record batch %d..%d: %s", e.base, e.last, e.reason)
}

var kafkaCRC32C = crc32.MakeTable(crc32.Castagnoli)

func decodeKafkaBatches(data []byte, fetchOffset int64, maxValue, maxBatch int) (recs []kafkaRecord, next int64, err error) {
	next = fetchOffset
	for len(data) >= 12 {
		base := int64(binary.BigEndian.Uint64(data))
		blen := int(int32(binary.BigEndian.Uint32(data[8:])))
		if blen < 49 || len(data)-12 < blen {
			if blen < 49 {
				return recs, base, &kafkaBatchError{base: base, last: base, reason: "bad batch length"}
			}
			break // partial tail
		}
		b := data[12 : 12+blen]
		data = data[12+blen:]
		last := base + int64(int32(binary.BigEndian.Uint32(b[11:])))
		if b[4] != 2 {
			return recs, base, &kafkaBatchError{base: base, last: last, reason: fmt.Sprintf("magic %d", b[4])}
		}
		if crc32.Checksum(b[9:], kafkaCRC32C) != binary.BigEndian.Uint32(b[5:]) {
			return recs, base, &kafkaBatchError{base: base, last: last, reason: "crc mismatch"}
		}
		attr := int16(binary.BigEndian.Uint16(b[9:]))
		baseTS := int64(binary.BigEndian.Uint64(b[15:]))
		count := int(int32(binary.BigEndian.Uint32(b[45:])))
		if last+1 > next {
			next = last + 1
		}
		if attr&0x20 != 0 {
			continue
		}
		body, derr := kafkaDecompress(int8(attr&7), b[49:], maxBatch)
		if derr != nil {
			tl := errors.Is(derr, errKafkaTooLarge)
			return recs, base, &kafkaBatchError{base: base, last: last, tooLarge: tl, reason: derr.Error()}
		}
		for i := 0; i < count; i++ {
			r, rest, perr := kafkaStandInRecord(body, base, baseTS, maxValue)
			if perr != nil {
				return recs, base, &kafkaBatchError{base: base, last: last, reason: perr.Error()}
			}
			body = rest
			if r.offset >= fetchOffset {
				recs = append(recs, r)
			}
		}
	}
	return recs, next, nil
}

func kafkaStandInRecord(b []byte, base, baseTS int64, maxValue int) (kafkaRecord, []byte, error) {
	var r kafkaRecord
	bad := errors.New("malformed record")
	l, n := binary.Varint(b)
	if n <= 0 || l < 0 || int64(len(b)-n) < l {
		return r, nil, bad
	}
	rec, rest := b[n:n+int(l)], b[n+int(l):]
	if len(rec) < 1 {
		return r, nil, bad
	}
	rec = rec[1:]
	tsd, n := binary.Varint(rec)
	if n <= 0 {
		return r, nil, bad
	}
	rec = rec[n:]
	od, n := binary.Varint(rec)
	if n <= 0 {
		return r, nil, bad
	}
	rec = rec[n:]
	r.offset = base + od
	r.timestamp = time.UnixMilli(baseTS + tsd)
	field := func() ([]byte, bool) {
		fl, n := binary.Varint(rec)
		if n <= 0 || fl < -1 || int64(len(rec)-n) < fl {
			return nil, false
		}
		rec = rec[n:]
		if fl < 0 {
			return nil, true
		}
		f := rec[:fl]
		rec = rec[fl:]
		return f, true
	}
	var ok bool
	if r.key, ok = field(); !ok {
		return r, nil, bad
	}
	if r.value, ok = field(); !ok {
		return r, nil, bad
	}
	if len(r.value) > maxValue {
		r.value, r.tooLarge = nil, true
	}
	hc, n := binary.Varint(rec)
	if n <= 0 || hc < 0 || hc > int64(len(rec)) {
		return r, nil, bad
	}
	rec = rec[n:]
	for i := int64(0); i < hc; i++ {
		k, ok1 := field()
		v, ok2 := field()
		if !ok1 || !ok2 {
			return r, nil, bad
		}
		r.headers = append(r.headers, kafkaHeader{key: string(k), value: v})
	}
	return r, rest, nil
}

func appendKafkaBatch(dst []byte, values [][]byte, codec int8, now time.Time) ([]byte, error) {
	var recs []byte
	for i, v := range values {
		var rec []byte
		rec = append(rec, 0)
		rec = binary.AppendVarint(rec, 0)
		rec = binary.AppendVarint(rec, int64(i))
		rec = binary.AppendVarint(rec, -1)
		rec = binary.AppendVarint(rec, int64(len(v)))
		rec = append(rec, v...)
		rec = binary.AppendVarint(rec, 0)
		recs = binary.AppendVarint(recs, int64(len(rec)))
		recs = append(recs, rec...)
	}
	body, err := kafkaCompress(codec, recs)
	if err != nil {
		return dst, err
	}
	ms := now.UnixMilli()
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(49+len(body)))
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff) // leader epoch -1
	dst = append(dst, 2)
	crcAt := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(codec))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(values)-1))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ms))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ms))
	dst = binary.BigEndian.AppendUint64(dst, 0xffffffffffffffff) // producer id -1
	dst = binary.BigEndian.AppendUint16(dst, 0xffff)
	dst = binary.BigEndian.AppendUint32(dst, 0xffffffff)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(values)))
	dst = append(dst, body...)
	binary.BigEndian.PutUint32(dst[crcAt:], crc32.Checksum(dst[crcAt+4:], kafkaCRC32C))
	_ = start
	return dst, nil
}
