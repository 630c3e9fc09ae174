// charset.go turns the encodings VOEvents are written in into the UTF-8 that
// encoding/xml reads: UTF-8 (with or without a byte-order mark), UTF-16 in
// either byte order, ISO-8859-1, US-ASCII and Windows-1252. The raw bytes of
// an event are never changed; only the parser's copy is converted.
package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeInput returns the bytes the XML decoder should read and the encoding
// the document declares (lower case, "" if none).
func decodeInput(raw []byte) ([]byte, string, error) {
	switch {
	case bytes.HasPrefix(raw, []byte{0xEF, 0xBB, 0xBF}):
		raw = raw[3:]
	case bytes.HasPrefix(raw, []byte{0xFE, 0xFF}):
		return utf16ToUTF8(raw[2:], binary.BigEndian)
	case bytes.HasPrefix(raw, []byte{0xFF, 0xFE}):
		return utf16ToUTF8(raw[2:], binary.LittleEndian)
	case bytes.HasPrefix(raw, []byte{0, '<', 0, '?'}):
		return utf16ToUTF8(raw, binary.BigEndian)
	case bytes.HasPrefix(raw, []byte{'<', 0, '?', 0}):
		return utf16ToUTF8(raw, binary.LittleEndian)
	}
	return raw, declaredEncoding(raw), nil
}

func utf16ToUTF8(b []byte, order binary.ByteOrder) ([]byte, string, error) {
	if len(b)%2 != 0 {
		return nil, "", fmt.Errorf("UTF-16 input has an odd number of bytes")
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = order.Uint16(b[2*i:])
	}
	out := make([]byte, 0, len(u))
	for _, r := range utf16.Decode(u) {
		out = utf8.AppendRune(out, r)
	}
	enc := declaredEncoding(out)
	if enc == "" {
		enc = "utf-16"
	}
	return out, enc, nil
}

// charsetReader is the encoding/xml CharsetReader: it is called for every
// declared encoding other than UTF-8.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf8", "utf-16", "utf-16le", "utf-16be", "utf16":
		// decodeInput has already converted UTF-16 to UTF-8.
		return in, nil
	case "us-ascii", "ascii":
		return &singleByteReader{r: in, ascii: true}, nil
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "iso-ir-100", "cp819", "ibm819":
		return &singleByteReader{r: in, table: nil}, nil
	case "windows-1252", "cp1252", "x-cp1252":
		return &singleByteReader{r: in, table: &cp1252}, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", label)
}

// singleByteReader converts a single-byte encoding to UTF-8. With a nil table
// it is ISO-8859-1, where every byte is the code point of the same value.
type singleByteReader struct {
	r     io.Reader
	table *[32]rune // code points for 0x80..0x9F
	ascii bool      // US-ASCII: a byte above 0x7F is an error
	buf   []byte
	out   []byte
}

func (s *singleByteReader) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if cap(s.buf) == 0 {
			s.buf = make([]byte, 4096)
		}
		n, err := s.r.Read(s.buf[:cap(s.buf)])
		for _, c := range s.buf[:n] {
			if s.ascii && c >= 0x80 {
				return 0, fmt.Errorf("byte 0x%02X is not US-ASCII", c)
			}
			r := rune(c)
			if s.table != nil && c >= 0x80 && c <= 0x9F {
				r = s.table[c-0x80]
			}
			s.out = utf8.AppendRune(s.out, r)
		}
		if n == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// cp1252 maps Windows-1252 bytes 0x80..0x9F (undefined ones to U+FFFD).
var cp1252 = [32]rune{
	0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD,
	0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0xFFFD,
}
