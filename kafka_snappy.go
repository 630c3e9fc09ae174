// kafka_snappy.go owns snappy decoding for Kafka batches (codec 2): the raw
// snappy block format and the xerial framing that Kafka's Java producer
// writes (magic 82 53 4E 41 50 50 59 00, 4 bytes version, 4 bytes
// compatible version, then [int32 BE length][raw snappy block]...). Input
// that starts with the xerial magic is framed; anything else is one raw
// block.
//
// Invariants: a block's declared length (its leading uvarint) is checked
// against the room left under the limit, and against what the block's
// bytes could encode (64 per byte), before anything is allocated; a lone
// raw block is allocated once at exactly its length (xerial blocks grow
// one buffer, see kafkaGrow); every literal
// and copy is checked against the input left and the output written so far
// (offset 0 and offsets before the block start are corrupt), and a block
// must produce exactly its declared length.
package main

import (
	"encoding/binary"
	"fmt"
)

// kafkaXerialMagic opens a xerial-framed snappy stream.
var kafkaXerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// kafkaUnsnappy decodes a xerial-framed or raw snappy payload into at most
// limit bytes.
func kafkaUnsnappy(src []byte, limit int) ([]byte, error) {
	if len(src) < 16 || string(src[:8]) != string(kafkaXerialMagic) {
		return kafkaSnappyBlock(nil, src, limit)
	}
	p := src[16:]
	var out []byte
	for len(p) > 0 {
		if len(p) < 4 {
			return nil, fmt.Errorf("xerial framing: truncated block length: %w", errKafkaCorrupt)
		}
		n := binary.BigEndian.Uint32(p)
		p = p[4:]
		if uint64(n) > uint64(len(p)) {
			return nil, fmt.Errorf("xerial framing: block of %d bytes with %d left: %w", n, len(p), errKafkaCorrupt)
		}
		var err error
		out, err = kafkaSnappyBlock(out, p[:n], limit)
		if err != nil {
			return nil, err
		}
		p = p[n:]
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// kafkaSnappyLen reads a raw block's declared length.
func kafkaSnappyLen(src []byte) (int, int, error) {
	v, n := binary.Uvarint(src)
	if n <= 0 || v > 1<<32-1 {
		return 0, 0, fmt.Errorf("bad length header: %w", errKafkaCorrupt)
	}
	return int(v), n, nil
}

// kafkaSnappyBlock appends the decoding of one raw snappy block to dst,
// keeping len(dst)+the block's length within limit. Copies reach only into
// this block's output.
func kafkaSnappyBlock(dst, src []byte, limit int) ([]byte, error) {
	want, s, err := kafkaSnappyLen(src)
	if err != nil {
		return nil, err
	}
	if want > limit-len(dst) {
		return nil, fmt.Errorf("block of %d bytes: %w", want, errKafkaTooLarge)
	}
	// A snappy element yields at most 64 bytes per input byte (a copy-2
	// of length 64 is 3 bytes; a literal is at least 1:1), so a length
	// the input cannot reach is refused before allocating it.
	if want > 64*(len(src)-s) {
		return nil, fmt.Errorf("%d bytes declared from %d: %w", want, len(src)-s, errKafkaCorrupt)
	}
	start := len(dst)
	if dst == nil {
		dst = make([]byte, 0, want) // the common case: one block, exact size
	} else {
		dst = kafkaGrow(dst, want, limit)
	}
	d := start // write position in dst[:start+want]
	end := start + want
	dst = dst[:end]
	for s < len(src) {
		tag := src[s]
		var length, offset int
		switch tag & 3 {
		case 0: // literal
			l := int(tag >> 2)
			s++
			if l >= 60 {
				nb := l - 59
				if s+nb > len(src) {
					return nil, kafkaSnappyErr("truncated literal length")
				}
				l = 0
				for i := nb - 1; i >= 0; i-- {
					l = l<<8 | int(src[s+i])
				}
				s += nb
			}
			length = l + 1
			if length > len(src)-s || length > end-d {
				return nil, kafkaSnappyErr("literal overruns")
			}
			copy(dst[d:], src[s:s+length])
			d += length
			s += length
			continue
		case 1: // copy with 1-byte offset
			if s+2 > len(src) {
				return nil, kafkaSnappyErr("truncated copy-1")
			}
			length = 4 + int(tag>>2)&7
			offset = int(tag>>5)<<8 | int(src[s+1])
			s += 2
		case 2: // copy with 2-byte offset
			if s+3 > len(src) {
				return nil, kafkaSnappyErr("truncated copy-2")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint16(src[s+1:]))
			s += 3
		case 3: // copy with 4-byte offset
			if s+5 > len(src) {
				return nil, kafkaSnappyErr("truncated copy-4")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint32(src[s+1:]))
			s += 5
		}
		if offset <= 0 || offset > d-start {
			return nil, kafkaSnappyErr("copy offset out of range")
		}
		if length > end-d {
			return nil, kafkaSnappyErr("copy overruns the declared length")
		}
		kafkaCopyMatch(dst, d, offset, length)
		d += length
	}
	if d != end {
		return nil, kafkaSnappyErr("short block")
	}
	return dst, nil
}

func kafkaSnappyErr(what string) error {
	return fmt.Errorf("%s: %w", what, errKafkaCorrupt)
}

// kafkaCopyMatch copies length bytes from d-offset to d within buf, the
// LZ77 way: an overlapping copy repeats the last offset bytes. The caller
// has checked 0 < offset <= d and d+length <= len(buf).
func kafkaCopyMatch(buf []byte, d, offset, length int) {
	if offset >= length {
		copy(buf[d:d+length], buf[d-offset:])
		return
	}
	// Overlap: double the copied run each step.
	for length > 0 {
		n := copy(buf[d:d+length], buf[d-offset:d])
		d += n
		length -= n
		offset += n
	}
}
