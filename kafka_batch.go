// kafka_batch.go owns Kafka record batches, magic 2 (the "records" of a
// Fetch response and of a Produce request): decodeKafkaBatches for the
// consumer and appendKafkaBatch for the producer.
//
// A batch is baseOffset int64, batchLength int32 (the bytes after it),
// partitionLeaderEpoch int32, magic int8, crc uint32 (CRC-32C of the bytes
// from attributes to the batch end), attributes int16 (bits 0-2 codec, 3
// log-append time, 4 transactional, 5 control), lastOffsetDelta int32,
// baseTimestamp, maxTimestamp int64, producerId int64, producerEpoch int16,
// baseSequence int32, record count int32, then the records, compressed as a
// whole when the codec is not none. A record is varint length, int8
// attributes, varlong timestamp delta, varint offset delta, varint key
// length (-1 null) and key, varint value length and value, varint header
// count, and per header a varint-length key and a varint-length value.
//
// Invariants: input is hostile. Every length and varint is checked against
// the bytes left before use; a record count is believed only as far as the
// bytes can hold records (a record is at least 7 bytes), so no allocation
// exceeds what the input or the decompression limit justifies; work is
// linear in the input plus the decompressed size. Returned records never
// alias data (uncompressed keys, values and header values are copied;
// compressed ones point into the batch's own decompressed buffer).
// Returned offsets strictly increase and are >= fetchOffset.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

type kafkaHeader struct {
	key   string
	value []byte
}

type kafkaRecord struct {
	offset    int64
	timestamp time.Time // zero when the batch has none (-1)
	key       []byte    // nil when null
	value     []byte    // nil when null or when tooLarge
	headers   []kafkaHeader
	tooLarge  bool // value longer than maxValue: value dropped, record still reported so its offset can be passed
}

// kafkaBatchError is a batch that could not be used (bad CRC, bad magic,
// corrupt records, decompression failure, too large to decompress within
// the limit). base and last are the batch's first and last offsets (from
// its header), so the caller can skip past it.
type kafkaBatchError struct {
	base, last int64
	tooLarge   bool
	reason     string
}

func (e *kafkaBatchError) Error() string {
	return fmt.Sprintf("kafka: record batch at offsets %d-%d: %s", e.base, e.last, e.reason)
}

const (
	kafkaBatchHeaderSize = 61 // through the record count
	kafkaBatchLenOffset  = 12 // bytes before partitionLeaderEpoch
	kafkaBatchCRCStart   = 21 // attributes onward are checksummed
	kafkaMinRecordSize   = 7  // length, attributes, 3 varints and a header count, 1 byte each
	kafkaRecordOverhead  = 512
	kafkaAttrCodecMask   = 0x07
	kafkaAttrLogAppend   = 0x08
	kafkaAttrControl     = 0x20
)

var kafkaCRC32C = crc32.MakeTable(crc32.Castagnoli)

// decodeKafkaBatches decodes the concatenated record batches (magic 2) of
// one partition's "records" field in a Fetch response. It returns the
// records with offset >= fetchOffset, in order. next is the offset just
// after the last complete batch examined (including control batches and
// batches whose records were all below fetchOffset), never less than
// fetchOffset, or fetchOffset if none was. A partial batch at the end of
// data is ignored (not an error). Control batches (attribute bit 5) are
// skipped. The CRC-32C is checked. Decompressed size is capped at
// min(maxBatch, recordCount*(maxValue+512)) bytes. On the first bad batch
// it stops and returns the records decoded so far, next = that batch's base
// offset (or, if greater, fetchOffset or the offset after the last record
// returned, so next never goes back), and err = *kafkaBatchError.
func decodeKafkaBatches(data []byte, fetchOffset int64, maxValue, maxBatch int) (recs []kafkaRecord, next int64, err error) {
	next = fetchOffset
	floor := fetchOffset // the lowest offset still to be returned
	for len(data) >= kafkaBatchLenOffset {
		base := int64(binary.BigEndian.Uint64(data))
		blen := int64(int32(binary.BigEndian.Uint32(data[8:])))
		if blen < 0 {
			return recs, max(base, floor), &kafkaBatchError{base: base, last: base, reason: fmt.Sprintf("negative batch length %d", blen)}
		}
		if blen > int64(len(data)-kafkaBatchLenOffset) {
			break // a partial batch at the end
		}
		batch := data[:kafkaBatchLenOffset+int(blen)]
		data = data[len(batch):]
		if len(batch) < kafkaBatchHeaderSize {
			// Old formats (magic 0, 1) are shorter but keep magic here.
			e := &kafkaBatchError{base: base, last: base, reason: fmt.Sprintf("batch length %d too short", blen)}
			if len(batch) > 16 && batch[16] != 2 {
				e.reason = fmt.Sprintf("unsupported magic %d", int8(batch[16]))
			}
			return recs, max(base, floor), e
		}
		lastDelta := int64(int32(binary.BigEndian.Uint32(batch[23:])))
		last := base
		if base <= math.MaxInt64-1-lastDelta {
			last = base + max(lastDelta, 0)
		}
		bad := func(tooLarge bool, format string, a ...any) error {
			return &kafkaBatchError{base: base, last: last, tooLarge: tooLarge, reason: fmt.Sprintf(format, a...)}
		}
		if m := int8(batch[16]); m != 2 {
			return recs, max(base, floor), bad(false, "unsupported magic %d", m)
		}
		if got, want := crc32.Checksum(batch[kafkaBatchCRCStart:], kafkaCRC32C), binary.BigEndian.Uint32(batch[17:]); got != want {
			return recs, max(base, floor), bad(false, "crc %#08x, header says %#08x", got, want)
		}
		attrs := binary.BigEndian.Uint16(batch[21:])
		if lastDelta < 0 || last-base != lastDelta {
			return recs, max(base, floor), bad(false, "last offset delta %d from base %d", lastDelta, base)
		}
		if attrs&kafkaAttrControl != 0 || last < floor {
			next = max(next, last+1)
			continue
		}
		out, err := kafkaBatchRecords(batch, base, last, attrs, floor, maxValue, maxBatch)
		if err != nil {
			return recs, max(base, floor), bad(errors.Is(err, errKafkaTooLarge), "%v", err)
		}
		for _, r := range out {
			recs = append(recs, r)
			floor = r.offset + 1
		}
		next = max(next, last+1)
		floor = max(floor, next)
	}
	return recs, next, nil
}

// kafkaBatchRecords decodes the records of one checked batch, keeping
// those at or above floor.
func kafkaBatchRecords(batch []byte, base, last int64, attrs uint16, floor int64, maxValue, maxBatch int) ([]kafkaRecord, error) {
	baseTS := int64(binary.BigEndian.Uint64(batch[27:]))
	maxTS := int64(binary.BigEndian.Uint64(batch[35:]))
	count := int64(int32(binary.BigEndian.Uint32(batch[57:])))
	if count < 0 {
		return nil, fmt.Errorf("negative record count %d", count)
	}
	body := batch[kafkaBatchHeaderSize:]
	codec := int8(attrs & kafkaAttrCodecMask)
	owned := false
	if codec != kafkaCodecNone {
		limit := int64(max(maxBatch, 0))
		if per := int64(max(maxValue, 0)) + kafkaRecordOverhead; count <= limit/per {
			limit = min(limit, count*per)
		}
		var err error
		body, err = kafkaDecompress(codec, body, int(limit))
		if err != nil {
			return nil, err
		}
		owned = true
	}
	if count > int64(len(body)/kafkaMinRecordSize) {
		return nil, fmt.Errorf("%d records cannot fit in %d bytes", count, len(body))
	}
	keep := func(b []byte) []byte {
		if owned || b == nil {
			return b
		}
		return append(make([]byte, 0, len(b)), b...)
	}
	recs := make([]kafkaRecord, 0, count)
	prev := int64(-1)
	for i := int64(0); i < count; i++ {
		rl, n := kafkaVarint(body)
		if n <= 0 || rl < 0 || rl > int64(len(body)-n) {
			return nil, fmt.Errorf("record %d: bad length", i)
		}
		rec := body[n : n+int(rl)]
		body = body[n+int(rl):]
		r, delta, err := kafkaParseRecord(rec, maxValue)
		if err != nil {
			return nil, fmt.Errorf("record %d: %v", i, err)
		}
		if delta <= prev || delta > last-base {
			return nil, fmt.Errorf("record %d: offset delta %d out of order", i, delta)
		}
		prev = delta
		r.offset = base + delta
		if r.offset < floor {
			continue
		}
		ms := baseTS + r.tsDelta
		if attrs&kafkaAttrLogAppend != 0 {
			ms = maxTS
		}
		if ms >= 0 {
			r.timestamp = time.UnixMilli(ms)
		}
		r.key = keep(r.key)
		r.value = keep(r.value)
		for j := range r.headers {
			r.headers[j].value = keep(r.headers[j].value)
		}
		recs = append(recs, r.kafkaRecord)
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%d bytes after the last record", len(body))
	}
	return recs, nil
}

// kafkaParsedRecord is a record before its batch's offsets and timestamps
// are applied.
type kafkaParsedRecord struct {
	kafkaRecord
	tsDelta int64
}

// kafkaParseRecord parses one record's bytes (after its length), which it
// must use up exactly.
func kafkaParseRecord(b []byte, maxValue int) (kafkaParsedRecord, int64, error) {
	var r kafkaParsedRecord
	if len(b) < 1 {
		return r, 0, errors.New("empty record")
	}
	b = b[1:] // attributes, unused
	var n int
	if r.tsDelta, n = kafkaVarint(b); n <= 0 {
		return r, 0, errors.New("bad timestamp delta")
	}
	b = b[n:]
	delta, n := kafkaVarint(b)
	if n <= 0 || delta < 0 || delta > math.MaxInt32 {
		return r, 0, errors.New("bad offset delta")
	}
	b = b[n:]
	var ok bool
	if r.key, b, ok = kafkaVarBytes(b); !ok {
		return r, 0, errors.New("bad key")
	}
	vl, n := kafkaVarint(b)
	if n <= 0 || vl < -1 || vl > int64(len(b)-n) {
		return r, 0, errors.New("bad value length")
	}
	b = b[n:]
	if vl >= 0 {
		if vl > int64(maxValue) {
			r.tooLarge = true
		} else {
			r.value = b[:vl:vl]
		}
		b = b[vl:]
	}
	hc, n := kafkaVarint(b)
	// A header is at least two bytes (two zero lengths).
	if n <= 0 || hc < 0 || hc > int64(len(b)-n)/2 {
		return r, 0, errors.New("bad header count")
	}
	b = b[n:]
	if hc > 0 {
		r.headers = make([]kafkaHeader, 0, hc)
	}
	for range hc {
		k, rest, ok := kafkaVarBytes(b)
		if !ok || k == nil {
			return r, 0, errors.New("bad header key")
		}
		v, rest, ok := kafkaVarBytes(rest)
		if !ok {
			return r, 0, errors.New("bad header value")
		}
		b = rest
		r.headers = append(r.headers, kafkaHeader{key: string(k), value: v})
	}
	if len(b) != 0 {
		return r, 0, fmt.Errorf("%d bytes after the headers", len(b))
	}
	return r, delta, nil
}

// kafkaVarint reads a zigzag varint (varint or varlong); n <= 0 on error.
func kafkaVarint(b []byte) (int64, int) {
	u, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0
	}
	return int64(u>>1) ^ -int64(u&1), n
}

// kafkaVarBytes reads a varint length (-1 null) and that many bytes.
func kafkaVarBytes(b []byte) (v, rest []byte, ok bool) {
	l, n := kafkaVarint(b)
	if n <= 0 || l < -1 || l > int64(len(b)-n) {
		return nil, nil, false
	}
	if l == -1 {
		return nil, b[n:], true
	}
	return b[n : n+int(l) : n+int(l)], b[n+int(l):], true
}

// appendKafkaBatch appends one record batch v2 holding values (no keys, no
// headers), offsets 0..n-1 relative to baseOffset 0, producer id -1, epoch
// -1, base sequence -1, timestamps now, compressed with codec (none or
// gzip), with a correct CRC-32C: what a Produce request carries.
func appendKafkaBatch(dst []byte, values [][]byte, codec int8, now time.Time) ([]byte, error) {
	if len(values) == 0 {
		return dst, errors.New("kafka: a record batch needs at least one record")
	}
	if codec != kafkaCodecNone && codec != kafkaCodecGzip {
		return dst, fmt.Errorf("kafka: producing with %s is not supported", kafkaCodecName(codec))
	}
	var recs []byte
	for i, v := range values {
		if len(v) > math.MaxInt32-64 {
			return dst, fmt.Errorf("kafka: value of %d bytes is too large", len(v))
		}
		var r [4 * binary.MaxVarintLen64]byte
		h := r[:0]
		h = append(h, 0)                     // attributes
		h = binary.AppendVarint(h, 0)        // timestamp delta
		h = binary.AppendVarint(h, int64(i)) // offset delta
		h = binary.AppendVarint(h, -1)       // null key
		h = binary.AppendVarint(h, int64(len(v)))
		recs = binary.AppendVarint(recs, int64(len(h)+len(v)+1))
		recs = append(recs, h...)
		recs = append(recs, v...)
		recs = append(recs, 0) // no headers
	}
	body, err := kafkaCompress(codec, recs)
	if err != nil {
		return dst, err
	}
	if len(body) > math.MaxInt32-kafkaBatchHeaderSize {
		return dst, errors.New("kafka: record batch too large")
	}
	ms := now.UnixMilli()
	start := len(dst)
	be := binary.BigEndian
	dst = be.AppendUint64(dst, 0)                                                          // base offset
	dst = be.AppendUint32(dst, uint32(kafkaBatchHeaderSize-kafkaBatchLenOffset+len(body))) // batch length
	dst = be.AppendUint32(dst, 0xFFFFFFFF)                                                 // partition leader epoch -1
	dst = append(dst, 2)                                                                   // magic
	dst = be.AppendUint32(dst, 0)                                                          // crc, below
	dst = be.AppendUint16(dst, uint16(codec))                                              // attributes
	dst = be.AppendUint32(dst, uint32(len(values)-1))                                      // last offset delta
	dst = be.AppendUint64(dst, uint64(ms))                                                 // base timestamp
	dst = be.AppendUint64(dst, uint64(ms))                                                 // max timestamp
	dst = be.AppendUint64(dst, math.MaxUint64)                                             // producer id -1
	dst = be.AppendUint16(dst, 0xFFFF)                                                     // producer epoch -1
	dst = be.AppendUint32(dst, 0xFFFFFFFF)                                                 // base sequence -1
	dst = be.AppendUint32(dst, uint32(len(values)))                                        // record count
	dst = append(dst, body...)
	be.PutUint32(dst[start+17:], crc32.Checksum(dst[start+kafkaBatchCRCStart:], kafkaCRC32C))
	return dst, nil
}
