// kafka_lz4.go owns lz4 decoding for Kafka batches (codec 3): the LZ4 frame
// format (magic 0x184D2204; FLG and BD descriptor; optional content size;
// header checksum; blocks, the high bit of a block size marking a stored
// block; optional block checksums and content checksum; end mark),
// concatenated frames, skippable frames (0x184D2A50-5F), the block decoder,
// and xxHash32 (which the frame format uses for its checksums).
//
// Invariants: every checksum the frame declares is verified (the header
// byte, each block's and the content's); a block may not be larger than the
// frame's block maximum in either form; a block's output may not pass the
// block maximum (corrupt) or the room under the limit (too large), checked
// before each literal run or match is written, so a long match is refused
// before it is allocated; output grows by kafkaGrow, so all buffers
// together stay under 2*(limit+1); a declared content size is believed
// only up to the limit and 255 bytes per input byte; a
// match offset must be non-zero and reach only into the frame's output
// (linked blocks, the default, see all earlier output of the frame;
// independent blocks only their own). Dictionaries (FLG bit 0) are refused,
// as is the legacy format.
package main

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

const (
	kafkaLZ4Magic        = 0x184D2204
	kafkaLZ4SkipMagic    = 0x184D2A50 // low 4 bits free
	kafkaLZ4SkipMagicMsk = 0xFFFFFFF0
)

func kafkaLZ4Err(what string) error {
	return fmt.Errorf("%s: %w", what, errKafkaCorrupt)
}

// kafkaUnlz4 decodes one or more concatenated LZ4 frames (skippable frames
// between them are skipped) into at most limit bytes.
func kafkaUnlz4(src []byte, limit int) ([]byte, error) {
	var out []byte
	frames := 0
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, kafkaLZ4Err("truncated magic")
		}
		magic := binary.LittleEndian.Uint32(src)
		if magic&kafkaLZ4SkipMagicMsk == kafkaLZ4SkipMagic {
			if len(src) < 8 {
				return nil, kafkaLZ4Err("truncated skippable frame")
			}
			n := binary.LittleEndian.Uint32(src[4:])
			if uint64(n) > uint64(len(src)-8) {
				return nil, kafkaLZ4Err("skippable frame overruns")
			}
			src = src[8+int(n):]
			continue
		}
		if magic != kafkaLZ4Magic {
			return nil, kafkaLZ4Err(fmt.Sprintf("bad frame magic %#x", magic))
		}
		var err error
		out, src, err = kafkaLZ4Frame(out, src[4:], limit)
		if err != nil {
			return nil, err
		}
		frames++
	}
	if frames == 0 {
		return nil, kafkaLZ4Err("no frame")
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// kafkaLZ4Frame decodes one frame whose magic has been consumed, appending
// to dst; it returns the input after the frame.
func kafkaLZ4Frame(dst, src []byte, limit int) ([]byte, []byte, error) {
	if len(src) < 3 {
		return nil, nil, kafkaLZ4Err("truncated frame descriptor")
	}
	flg, bd := src[0], src[1]
	if flg>>6 != 1 {
		return nil, nil, kafkaLZ4Err(fmt.Sprintf("frame version %d", flg>>6))
	}
	if flg&0x02 != 0 || bd&0x8F != 0 {
		return nil, nil, kafkaLZ4Err("reserved descriptor bits set")
	}
	if flg&0x01 != 0 {
		return nil, nil, kafkaLZ4Err("dictionaries are not supported")
	}
	independent := flg&0x20 != 0
	blockSum := flg&0x10 != 0
	hasSize := flg&0x08 != 0
	contentSum := flg&0x04 != 0
	var blockMax int
	switch bd >> 4 & 7 {
	case 4:
		blockMax = 64 << 10
	case 5:
		blockMax = 256 << 10
	case 6:
		blockMax = 1 << 20
	case 7:
		blockMax = 4 << 20
	default:
		return nil, nil, kafkaLZ4Err(fmt.Sprintf("block size code %d", bd>>4&7))
	}
	hdr := 2
	var contentSize uint64
	if hasSize {
		if len(src) < 2+8+1 {
			return nil, nil, kafkaLZ4Err("truncated content size")
		}
		contentSize = binary.LittleEndian.Uint64(src[2:])
		hdr += 8
	}
	if byte(kafkaXXH32(src[:hdr], 0)>>8) != src[hdr] {
		return nil, nil, kafkaLZ4Err("header checksum mismatch")
	}
	src = src[hdr+1:]

	frameStart := len(dst)
	if hasSize {
		if contentSize > uint64(limit-len(dst)) {
			return nil, nil, fmt.Errorf("frame content of %d bytes: %w", contentSize, errKafkaTooLarge)
		}
		// Believe the size only as far as the input could encode it.
		hint := min(int(contentSize), 255*len(src)+64)
		dst = kafkaGrow(dst, hint, limit)
	}
	for {
		if len(src) < 4 {
			return nil, nil, kafkaLZ4Err("truncated block size")
		}
		bsz := binary.LittleEndian.Uint32(src)
		src = src[4:]
		if bsz == 0 {
			break // end mark
		}
		stored := bsz&0x80000000 != 0
		n := int(bsz & 0x7FFFFFFF)
		if n > blockMax {
			return nil, nil, kafkaLZ4Err(fmt.Sprintf("block of %d bytes over the frame maximum %d", n, blockMax))
		}
		if n > len(src) {
			return nil, nil, kafkaLZ4Err("truncated block")
		}
		block := src[:n]
		src = src[n:]
		if blockSum {
			if len(src) < 4 {
				return nil, nil, kafkaLZ4Err("truncated block checksum")
			}
			if binary.LittleEndian.Uint32(src) != kafkaXXH32(block, 0) {
				return nil, nil, kafkaLZ4Err("block checksum mismatch")
			}
			src = src[4:]
		}
		if stored {
			if n > limit-len(dst) {
				return nil, nil, errKafkaTooLarge
			}
			dst = kafkaGrow(dst, n, limit)
			dst = append(dst, block...)
			continue
		}
		window := frameStart
		if independent {
			window = len(dst)
		}
		var err error
		dst, err = kafkaLZ4Block(dst, block, window, blockMax, limit)
		if err != nil {
			return nil, nil, err
		}
	}
	if hasSize && uint64(len(dst)-frameStart) != contentSize {
		return nil, nil, kafkaLZ4Err("content size mismatch")
	}
	if contentSum {
		if len(src) < 4 {
			return nil, nil, kafkaLZ4Err("truncated content checksum")
		}
		if binary.LittleEndian.Uint32(src) != kafkaXXH32(dst[frameStart:], 0) {
			return nil, nil, kafkaLZ4Err("content checksum mismatch")
		}
		src = src[4:]
	}
	return dst, src, nil
}

// kafkaLZ4Block appends the decoding of one compressed block to dst. Match
// offsets may reach back to dst[window]. The block's output is held to
// blockMax (corrupt beyond) and to limit for the whole (too large beyond);
// dst grows as output is written, so a short block costs little.
func kafkaLZ4Block(dst, src []byte, window, blockMax, limit int) ([]byte, error) {
	bound := blockMax
	tooLarge := false
	if room := limit - len(dst); bound > room {
		bound, tooLarge = room, true
	}
	end := len(dst) + bound
	over := func() error {
		if tooLarge {
			return errKafkaTooLarge
		}
		return kafkaLZ4Err("block output over the frame's block maximum")
	}
	s := 0
	for {
		if s >= len(src) {
			return nil, kafkaLZ4Err("truncated sequence")
		}
		token := src[s]
		s++
		lit := int(token >> 4)
		if lit == 15 {
			for {
				if s >= len(src) {
					return nil, kafkaLZ4Err("truncated literal length")
				}
				b := src[s]
				s++
				lit += int(b)
				if b != 255 {
					break
				}
			}
		}
		if lit > len(src)-s {
			return nil, kafkaLZ4Err("literals overrun the block")
		}
		if lit > end-len(dst) {
			return nil, over()
		}
		dst = kafkaGrow(dst, lit, limit)
		dst = append(dst, src[s:s+lit]...)
		s += lit
		if s == len(src) {
			return dst, nil // the last sequence has literals only
		}
		if len(src)-s < 2 {
			return nil, kafkaLZ4Err("truncated match offset")
		}
		offset := int(binary.LittleEndian.Uint16(src[s:]))
		s += 2
		if offset == 0 || offset > len(dst)-window {
			return nil, kafkaLZ4Err("match offset out of range")
		}
		ml := int(token & 15)
		if ml == 15 {
			for {
				if s >= len(src) {
					return nil, kafkaLZ4Err("truncated match length")
				}
				b := src[s]
				s++
				ml += int(b)
				if b != 255 {
					break
				}
			}
		}
		ml += 4
		if ml > end-len(dst) {
			return nil, over()
		}
		dst = kafkaGrow(dst, ml, limit)
		d := len(dst)
		dst = dst[:d+ml]
		kafkaCopyMatch(dst, d, offset, ml)
	}
}

// xxHash32 (the published algorithm; the frame format's checksum).
const (
	kafkaXXPrime1 uint32 = 2654435761
	kafkaXXPrime2 uint32 = 2246822519
	kafkaXXPrime3 uint32 = 3266489917
	kafkaXXPrime4 uint32 = 668265263
	kafkaXXPrime5 uint32 = 374761393
)

func kafkaXXRound(acc, lane uint32) uint32 {
	return bits.RotateLeft32(acc+lane*kafkaXXPrime2, 13) * kafkaXXPrime1
}

// kafkaXXH32 is xxHash32 of b with seed.
func kafkaXXH32(b []byte, seed uint32) uint32 {
	n := len(b)
	var h uint32
	if n >= 16 {
		v1 := seed + kafkaXXPrime1 + kafkaXXPrime2
		v2 := seed + kafkaXXPrime2
		v3 := seed
		v4 := seed - kafkaXXPrime1
		for len(b) >= 16 {
			v1 = kafkaXXRound(v1, binary.LittleEndian.Uint32(b[0:]))
			v2 = kafkaXXRound(v2, binary.LittleEndian.Uint32(b[4:]))
			v3 = kafkaXXRound(v3, binary.LittleEndian.Uint32(b[8:]))
			v4 = kafkaXXRound(v4, binary.LittleEndian.Uint32(b[12:]))
			b = b[16:]
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) +
			bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = seed + kafkaXXPrime5
	}
	h += uint32(n)
	for len(b) >= 4 {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(b)*kafkaXXPrime3, 17) * kafkaXXPrime4
		b = b[4:]
	}
	for _, c := range b {
		h = bits.RotateLeft32(h+uint32(c)*kafkaXXPrime5, 11) * kafkaXXPrime1
	}
	h ^= h >> 15
	h *= kafkaXXPrime2
	h ^= h >> 13
	h *= kafkaXXPrime3
	h ^= h >> 16
	return h
}
