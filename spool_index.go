// spool_index.go owns a sealed spool segment's index, %020d.idx: written
// once when the segment is sealed (temp file, fsync, rename; the caller
// fsyncs the directory), so that opening the spool reads indexes instead of
// scanning segments. Layout, integers big-endian:
//
//	magic  "CMTSIDX1"
//	count  uint32, records in the segment
//	crc    uint32, CRC-32C of everything after this header
//	count fixed entries of 24 bytes: seq u64 | received Unix ns i64 | offset u64
//	count metadata entries: role u8 | event bytes u32 |
//	        source length u16 | source | ivorn length u16 | ivorn
//
// The fixed entries come first so a reader could binary-search them in
// place. An index is trusted only if it checks and describes its segment
// exactly: seqs consecutive from at least the segment's first, offsets
// chained from just past the segment's magic to its end.
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

const (
	spoolIdxMagic     = "CMTSIDX1"
	spoolIdxHeader    = 8 + 4 + 4
	spoolIdxEntry     = 24
	spoolIdxMetaFixed = 1 + 4 + 2 + 2
)

// spoolFrameLen is the size on disk of m's record.
func spoolFrameLen(m *spoolMeta) int64 {
	return int64(spoolFrameHeader + spoolMinPayload - 1 + len(m.source) + len(m.ivorn) + int(m.size))
}

// spoolIndexSize is the size of the index of metas.
func spoolIndexSize(metas []spoolMeta) int64 {
	n := int64(spoolIdxHeader)
	for i := range metas {
		n += spoolIdxEntry + spoolIdxMetaFixed + int64(len(metas[i].source)+len(metas[i].ivorn))
	}
	return n
}

// writeSpoolIndex writes the index of metas to path atomically (temp file,
// fsync, rename) and returns its size. The caller fsyncs the directory.
func writeSpoolIndex(path string, metas []spoolMeta) (int64, error) {
	size := spoolIndexSize(metas)
	b := make([]byte, spoolIdxHeader, size)
	copy(b, spoolIdxMagic)
	binary.BigEndian.PutUint32(b[8:12], uint32(len(metas)))
	for i := range metas {
		m := &metas[i]
		b = binary.BigEndian.AppendUint64(b, m.seq)
		b = binary.BigEndian.AppendUint64(b, uint64(m.recv))
		b = binary.BigEndian.AppendUint64(b, uint64(m.off))
	}
	for i := range metas {
		m := &metas[i]
		b = append(b, m.role)
		b = binary.BigEndian.AppendUint32(b, m.size)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.source)))
		b = append(b, m.source...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.ivorn)))
		b = append(b, m.ivorn...)
	}
	binary.BigEndian.PutUint32(b[12:16], spoolCRC(nil, b[spoolIdxHeader:]))
	if err := writeFileAtomic(path, b); err != nil {
		return 0, err
	}
	return size, nil
}

// readSpoolIndex reads and checks the index at path of the segment whose
// first seq is first and whose size is segSize.
func readSpoolIndex(path string, first uint64, segSize int64) ([]spoolMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	// An index is never much larger than its segment: each entry is at
	// most 24 + 9 bytes plus the source and ivorn its record holds too.
	if fi.Size() < spoolIdxHeader || fi.Size() > spoolIdxHeader+4*segSize {
		return nil, fmt.Errorf("index of %d bytes for a segment of %d", fi.Size(), segSize)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	if string(b[:8]) != spoolIdxMagic {
		return nil, errors.New("bad magic")
	}
	count := int(binary.BigEndian.Uint32(b[8:12]))
	if spoolCRC(nil, b[spoolIdxHeader:]) != binary.BigEndian.Uint32(b[12:16]) {
		return nil, errors.New("bad CRC")
	}
	body := b[spoolIdxHeader:]
	if count < 1 || count > len(body)/(spoolIdxEntry+spoolIdxMetaFixed) {
		return nil, fmt.Errorf("bad record count %d", count)
	}
	metas := make([]spoolMeta, count)
	fixed, rest := body[:count*spoolIdxEntry], body[count*spoolIdxEntry:]
	for i := range metas {
		e := fixed[i*spoolIdxEntry:]
		metas[i].seq = binary.BigEndian.Uint64(e[0:8])
		metas[i].recv = int64(binary.BigEndian.Uint64(e[8:16]))
		metas[i].off = int64(binary.BigEndian.Uint64(e[16:24]))
	}
	for i := range metas {
		m := &metas[i]
		if len(rest) < spoolIdxMetaFixed {
			return nil, errors.New("metadata runs past the end")
		}
		m.role = rest[0]
		m.size = binary.BigEndian.Uint32(rest[1:5])
		sl := int(binary.BigEndian.Uint16(rest[5:7]))
		rest = rest[7:]
		if len(rest) < sl+2 {
			return nil, errors.New("metadata runs past the end")
		}
		m.source = string(rest[:sl])
		il := int(binary.BigEndian.Uint16(rest[sl:]))
		rest = rest[sl+2:]
		if len(rest) < il {
			return nil, errors.New("metadata runs past the end")
		}
		m.ivorn = string(rest[:il])
		rest = rest[il:]
		if m.role == 0 || int(m.role) >= len(spoolRoles) || m.size == 0 {
			return nil, fmt.Errorf("bad metadata for seq %d", m.seq)
		}
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing bytes")
	}
	off := int64(len(spoolSegMagic))
	for i := range metas {
		m := &metas[i]
		if (i == 0 && m.seq != first) || (i > 0 && m.seq != metas[i-1].seq+1) {
			return nil, fmt.Errorf("seq %d out of order", m.seq)
		}
		if m.off != off {
			return nil, fmt.Errorf("seq %d at offset %d, expected %d", m.seq, m.off, off)
		}
		off += spoolFrameLen(m)
	}
	if off != segSize {
		return nil, fmt.Errorf("records end at %d but the segment has %d bytes", off, segSize)
	}
	return metas, nil
}
