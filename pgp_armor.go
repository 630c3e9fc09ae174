// pgp_armor.go owns OpenPGP ASCII armor (RFC 9580 §6): decoding one or more
// armored blocks, encoding one, and the CRC-24 checksum.
//
// Invariants: decoding never allocates more than the size of its input, and a
// checksum line that is present but wrong is always an error (an absent one
// is accepted, as RFC 9580 allows).
package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
)

// Armor errors.
var (
	// errArmorNoBlock means the input holds no "-----BEGIN PGP" line.
	errArmorNoBlock = errors.New("no armor block")
	// errArmorCRC means a checksum line is present and does not match.
	errArmorCRC = errors.New("armor checksum mismatch")
)

// crc24 computes the OpenPGP CRC-24 (init 0xB704CE, polynomial 0x1864CFB).
func crc24(data []byte) uint32 {
	crc := uint32(0xB704CE)
	for _, b := range data {
		crc ^= uint32(b) << 16
		for i := 0; i < 8; i++ {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= 0x1864CFB
			}
		}
	}
	return crc & 0xFFFFFF
}

// armorBlock is one decoded armor block.
type armorBlock struct {
	kind string // what follows "BEGIN PGP ", for example "SIGNATURE"
	data []byte // the decoded binary
}

// decodeArmor decodes the first armor block in text and returns it with the
// text after its END line.
func decodeArmor(text []byte) (armorBlock, []byte, error) {
	const begin = "-----BEGIN PGP "
	i := bytes.Index(text, []byte(begin))
	if i < 0 {
		return armorBlock{}, nil, errArmorNoBlock
	}
	if i > 0 && text[i-1] != '\n' && text[i-1] != '\r' {
		return armorBlock{}, nil, errors.New("armor: BEGIN line does not start a line")
	}
	line, rest := armorLine(text[i:])
	line = bytes.TrimRight(line, " \t")
	if !bytes.HasSuffix(line, []byte("-----")) || len(line) < len(begin)+len("-----")+1 {
		return armorBlock{}, nil, fmt.Errorf("armor: bad BEGIN line %.60q", line)
	}
	kind := string(line[len(begin) : len(line)-len("-----")])
	endLine := "-----END PGP " + kind + "-----"

	// Headers: "Key: value" lines up to a blank line. A body line is base64
	// and never contains ':', so a missing blank line is tolerated.
	for {
		if len(rest) == 0 {
			return armorBlock{}, nil, errors.New("armor: truncated in headers")
		}
		var l []byte
		l, next := armorLine(rest)
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			rest = next
			break
		}
		if bytes.IndexByte(l, ':') < 0 || bytes.HasPrefix(l, []byte("-----")) {
			break
		}
		rest = next
	}

	// Body lines, an optional checksum line, then the END line.
	body := make([]byte, 0, len(rest))
	var crcLine []byte
	ended := false
	for len(rest) > 0 {
		var l []byte
		l, rest = armorLine(rest)
		l = bytes.TrimSpace(l)
		switch {
		case len(l) == 0:
			continue
		case bytes.HasPrefix(l, []byte("-----")):
			if string(l) != endLine {
				return armorBlock{}, nil, fmt.Errorf("armor: want %q, found %.60q", endLine, l)
			}
			ended = true
		case l[0] == '=' && len(l) == 5 && crcLine == nil:
			crcLine = l[1:]
			continue
		case crcLine != nil:
			return armorBlock{}, nil, errors.New("armor: data after the checksum line")
		default:
			body = append(body, l...)
			continue
		}
		break
	}
	if !ended {
		return armorBlock{}, nil, errors.New("armor: no END line (truncated)")
	}
	data := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
	n, err := base64.StdEncoding.Strict().Decode(data, body)
	if err != nil {
		return armorBlock{}, nil, fmt.Errorf("armor: base64: %v", err)
	}
	data = data[:n]
	if crcLine != nil {
		var sum [3]byte
		if m, err := base64.StdEncoding.Decode(sum[:], crcLine); err != nil || m != 3 {
			return armorBlock{}, nil, errors.New("armor: unreadable checksum line")
		}
		if uint32(sum[0])<<16|uint32(sum[1])<<8|uint32(sum[2]) != crc24(data) {
			return armorBlock{}, nil, errArmorCRC
		}
	}
	return armorBlock{kind: kind, data: data}, rest, nil
}

// decodeArmorAll decodes every armor block in text, in order.
func decodeArmorAll(text []byte) ([]armorBlock, error) {
	var blocks []armorBlock
	for {
		b, rest, err := decodeArmor(text)
		if errors.Is(err, errArmorNoBlock) && len(blocks) > 0 {
			return blocks, nil
		}
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, b)
		text = rest
	}
}

// armorLine splits off one line (without its CR LF or LF).
func armorLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	return bytes.TrimSuffix(b[:i], []byte("\r")), b[i+1:]
}

// isArmored reports whether data looks like ASCII armor rather than binary
// packets (a binary packet always starts with a byte that has bit 7 set).
func isArmored(data []byte) bool {
	t := bytes.TrimLeft(data, xmlSpaceChars)
	return len(t) > 0 && t[0]&0x80 == 0 && bytes.Contains(data, []byte("-----BEGIN PGP "))
}

// encodeArmor armors data as "-----BEGIN PGP kind-----" with 64-column base64
// lines, LF line ends, a CRC-24 line (still expected by older GnuPG and by
// the VOEvent convention's vectors) and no trailing newline.
func encodeArmor(kind string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("-----BEGIN PGP " + kind + "-----\n\n")
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 64 {
		b.WriteString(enc[:64])
		b.WriteByte('\n')
		enc = enc[64:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	c := crc24(data)
	b.WriteString("=" + base64.StdEncoding.EncodeToString([]byte{byte(c >> 16), byte(c >> 8), byte(c)}) + "\n")
	b.WriteString("-----END PGP " + kind + "-----")
	return b.Bytes()
}
