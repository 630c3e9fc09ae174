// kafka_zstd.go owns zstd decoding for Kafka batches (codec 4), which is
// what GCN's producers send (gcn-kafka defaults to zstd).
//
// Why this route: the project is standard library only and writes its own
// code, and the standard library's zstd decoder (internal/zstd, RFC 8878,
// no dictionaries, window clamped to 8 MiB) is not importable. Its one
// public door is debug/elf, which decompresses SHF_COMPRESSED sections whose
// Elf64_Chdr has ch_type ELFCOMPRESS_ZSTD (2). So the frame is presented as
// the only section of a synthetic in-memory ELF64 little-endian file (a
// 64-byte header, a section header table of a null section and the
// compressed one, the 24-byte Elf64_Chdr, then the caller's bytes, which are
// not copied), opened with elf.NewFile, and read through Section.Open.
// debug/elf's reader reads the zstd stream to its end and ignores ch_size
// (TestKafkaZstdChSize checks that), so ch_size is written as 0. Reading is
// bounded by kafkaReadAll (limit+1 bytes at most), so a zstd bomb stops at
// the limit; the decoder's own window (at most 8 MiB) is the constant on
// top. Several concatenated frames and skippable frames decode, as
// internal/zstd reads frames until its input ends.
//
// Binary-size cost, measured on go1.26.8 with CGO_ENABLED=0 GOOS=linux
// GOARCH=arm GOARM=6 go build -trimpath -ldflags='-s -w', on a throwaway
// copy of the repository in /tmp with one extra file whose init calls
// kafkaDecompress (until the Kafka client calls it, the linker drops all of
// this): the comet binary is 5,505,186 bytes without the Kafka codecs,
// still 5,505,186 with gzip, snappy and lz4 (56 KB of sections, absorbed by
// alignment), and 5,701,794 with zstd as well. So zstd through debug/elf
// costs 196,608 bytes of file (181 KB of section contents: internal/zstd
// about 48 KB of code, debug/elf about 22 KB of code plus its tables), 3.6 %.
package main

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// kafkaZstdELFPrefix is the part of the synthetic ELF file before the zstd
// data: the file header, two section headers and the compression header.
const (
	kafkaELFHeaderSize  = 64
	kafkaELFSectionSize = 64
	kafkaELFChdrSize    = 24
	kafkaELFPrefixSize  = kafkaELFHeaderSize + 2*kafkaELFSectionSize + kafkaELFChdrSize
)

// kafkaELFPrefix builds the bytes before the frame, for a frame of n bytes.
func kafkaELFPrefix(n int, chSize uint64) []byte {
	b := make([]byte, kafkaELFPrefixSize)
	le := binary.LittleEndian
	copy(b, "\x7fELF")
	b[4] = byte(elf.ELFCLASS64)
	b[5] = byte(elf.ELFDATA2LSB)
	b[6] = byte(elf.EV_CURRENT)
	le.PutUint16(b[16:], uint16(elf.ET_REL))
	le.PutUint16(b[18:], uint16(elf.EM_NONE))
	le.PutUint32(b[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(b[40:], kafkaELFHeaderSize) // e_shoff
	le.PutUint16(b[52:], kafkaELFHeaderSize) // e_ehsize
	le.PutUint16(b[58:], kafkaELFSectionSize)
	le.PutUint16(b[60:], 2) // e_shnum: null + compressed
	le.PutUint16(b[62:], 0) // e_shstrndx: no name table
	sh := b[kafkaELFHeaderSize+kafkaELFSectionSize:]
	le.PutUint32(sh[4:], uint32(elf.SHT_PROGBITS))
	le.PutUint64(sh[8:], uint64(elf.SHF_COMPRESSED))
	le.PutUint64(sh[24:], kafkaELFHeaderSize+2*kafkaELFSectionSize) // sh_offset
	le.PutUint64(sh[32:], uint64(kafkaELFChdrSize+n))               // sh_size
	le.PutUint64(sh[48:], 1)                                        // sh_addralign
	ch := b[kafkaELFHeaderSize+2*kafkaELFSectionSize:]
	le.PutUint32(ch[0:], uint32(elf.COMPRESS_ZSTD))
	le.PutUint64(ch[8:], chSize)
	le.PutUint64(ch[16:], 1)
	return b
}

// kafkaCatReaderAt reads a followed by b as one file, without copying,
// with single bytes of b replaced as patch (sorted by position) says.
type kafkaCatReaderAt struct {
	a, b  []byte
	patch []kafkaZstdPatch
}

func (c *kafkaCatReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	if off < int64(len(c.a)) {
		n = copy(p, c.a[off:])
	}
	if n < len(p) {
		boff := off + int64(n) - int64(len(c.a))
		if boff < int64(len(c.b)) {
			m := copy(p[n:], c.b[boff:])
			// Patches are in increasing order of position.
			i, _ := slices.BinarySearchFunc(c.patch, boff, func(pt kafkaZstdPatch, at int64) int {
				return cmp.Compare(int64(pt.at), at)
			})
			for ; i < len(c.patch) && int64(c.patch[i].at) < boff+int64(m); i++ {
				p[n+int(int64(c.patch[i].at)-boff)] = c.patch[i].b
			}
			n += m
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// kafkaUnzstd decodes one or more zstd frames into at most limit bytes.
func kafkaUnzstd(src []byte, limit int) ([]byte, error) {
	return kafkaUnzstdChSize(src, limit, 0)
}

func kafkaUnzstdChSize(src []byte, limit int, chSize uint64) ([]byte, error) {
	if len(src) == 0 {
		return nil, fmt.Errorf("empty input: %w", errKafkaCorrupt)
	}
	patch, size, err := kafkaZstdScan(src, limit)
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(&kafkaCatReaderAt{kafkaELFPrefix(len(src), chSize), src, patch})
	if err != nil {
		return nil, fmt.Errorf("wrapping the frame: %v", err)
	}
	if len(f.Sections) != 2 {
		return nil, errors.New("wrapping the frame: section lost")
	}
	out, err := kafkaReadAll(f.Sections[1].Open(), limit, min(size, 1024*len(src)))
	if err != nil {
		if errors.Is(err, errKafkaTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%v: %w", err, errKafkaCorrupt)
	}
	return out, nil
}

// kafkaZstdPatch replaces the byte at src[at] with b.
type kafkaZstdPatch struct {
	at int
	b  byte
}

// kafkaZstdScan walks the frames of src (RFC 8878 3.1) by their headers
// and block headers, without decoding, for two things internal/zstd does
// not do. Its window buffer is allocated at the size a frame declares (up
// to 8 MiB) before any block is read, so the window descriptor is patched
// down to the least of the declared window, the limit and an upper bound
// of the frame's output from its block headers, but not below
// min(declared, 128 KiB). A back reference never reaches further than the
// output so far, which passes neither bound, and 128 KiB keeps every legal
// block size legal. And a declared content size over the limit is too
// large at once. It returns the patches and the sum of the
// declared content sizes (a size hint). A walk that meets something it
// does not understand stops quietly: the decoder reports the error.
func kafkaZstdScan(src []byte, limit int) ([]kafkaZstdPatch, int, error) {
	var patch []kafkaZstdPatch
	total := uint64(0)
	maxW := uint64(max(limit, 128<<10))
	le := binary.LittleEndian
	p := 0
	for len(src)-p >= 8 {
		magic := le.Uint32(src[p:])
		if magic&0xFFFFFFF0 == 0x184D2A50 { // skippable frame
			n := uint64(le.Uint32(src[p+4:]))
			if n > uint64(len(src)-p-8) {
				break
			}
			p += 8 + int(n)
			continue
		}
		if magic != 0xFD2FB528 {
			break
		}
		fhd := src[p+4]
		single := fhd&0x20 != 0
		q := p + 5
		wd := -1 // where the window descriptor is
		if !single {
			wd = q
			q++
		}
		q += [4]int{0, 1, 2, 4}[fhd&3]
		n := [4]int{0, 2, 4, 8}[fhd>>6]
		if n == 0 && single {
			n = 1
		}
		if q+n > len(src) {
			break
		}
		if n > 0 {
			var v uint64
			for i := n - 1; i >= 0; i-- {
				v = v<<8 | uint64(src[q+i])
			}
			if n == 2 {
				v += 256
			}
			if v > uint64(limit) || total+v > uint64(limit) {
				return nil, 0, fmt.Errorf("frame content of %d bytes: %w", v, errKafkaTooLarge)
			}
			total += v
		}
		q += n
		// An upper bound of the frame's output, from its block headers:
		// a raw or RLE block gives its size, a compressed block at most
		// 128 KiB.
		bound := uint64(0)
		for { // blocks
			if q+3 > len(src) {
				return patch, int(total), nil
			}
			h := uint32(src[q]) | uint32(src[q+1])<<8 | uint32(src[q+2])<<16
			q += 3
			switch size := int(h >> 3); h >> 1 & 3 {
			case 0: // raw
				q += size
				bound += uint64(size)
			case 1: // RLE
				q++
				bound += uint64(size)
			case 2: // compressed
				q += size
				bound += 128 << 10
			default:
				return patch, int(total), nil
			}
			if q > len(src) {
				return patch, int(total), nil
			}
			if h&1 != 0 {
				break
			}
		}
		if wd >= 0 {
			w := kafkaZstdWindow(src[wd])
			if want := max(min(w, maxW, bound), min(w, 128<<10)); want < w {
				patch = append(patch, kafkaZstdPatch{wd, kafkaZstdDescriptor(want)})
			}
		}
		if fhd&0x04 != 0 {
			q += 4 // content checksum
		}
		p = q
	}
	return patch, int(total), nil
}

// kafkaZstdWindow is the window size a descriptor byte gives (RFC 8878
// 3.1.1.1.2).
func kafkaZstdWindow(d byte) uint64 {
	base := uint64(1) << (10 + d>>3)
	return base + base/8*uint64(d&7)
}

// kafkaZstdDescriptor is the descriptor of the smallest window >= w.
func kafkaZstdDescriptor(w uint64) byte {
	for d := 0; d < 256; d++ {
		if kafkaZstdWindow(byte(d)) >= w {
			return byte(d)
		}
	}
	return 255
}
