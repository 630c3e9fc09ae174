// vtp.go owns the wire layer of the VOEvent Transport Protocol: framing (a
// 4-byte big-endian length, then the XML) and the Transport messages (ack,
// nak, iamalive, authenticate and their responses), written byte for byte as
// Comet writes them, and read liberally.
//
// Invariant: a frame's length is checked against the limit before anything
// is allocated for it, so a peer cannot make us allocate more than the limit.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"time"
)

// Defaults of the wire layer.
const (
	defaultMaxMessageSize = 1 << 20 // --max-message-size
	defaultReceivePort    = 8098
	defaultBroadcastPort  = 8099
)

// Framing errors.
var (
	errEmptyFrame    = errors.New("zero-length frame")
	errFrameTooLarge = errors.New("frame length exceeds the limit")
)

// frameError says what was wrong with a frame, with the offending length.
type frameError struct {
	err    error
	length uint32
	limit  int
}

func (e *frameError) Error() string {
	if e.err == errFrameTooLarge {
		return fmt.Sprintf("frame of %d bytes exceeds the limit of %d (a little-endian length prefix?)", e.length, e.limit)
	}
	return e.err.Error()
}

func (e *frameError) Unwrap() error { return e.err }

// readFrame reads one framed message. A zero length or a length over max is
// an error (*frameError) and nothing is read past the prefix; a frame cut
// short by EOF is io.ErrUnexpectedEOF; a clean EOF before any byte is io.EOF.
func readFrame(r io.Reader, max int) ([]byte, error) {
	return readFrameInto(r, nil, max)
}

// readFrameInto is readFrame reusing buf's storage when it is large enough.
func readFrameInto(r io.Reader, buf []byte, max int) ([]byte, error) {
	n, err := readFrameHeader(r, max)
	if err != nil {
		return nil, err
	}
	return readFrameBody(r, buf, n)
}

// readFrameHeader reads a frame's length prefix and checks it.
func readFrameHeader(r io.Reader, max int) (uint32, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return 0, &frameError{err: errEmptyFrame}
	}
	if uint64(n) > uint64(max) {
		return 0, &frameError{err: errFrameTooLarge, length: n, limit: max}
	}
	return n, nil
}

// readFrameBody reads the n bytes of a frame whose header was read.
func readFrameBody(r io.Reader, buf []byte, n uint32) ([]byte, error) {
	if uint64(cap(buf)) < uint64(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// writeFrame writes one framed message with a single write where it can.
func writeFrame(w io.Writer, payload []byte) error {
	if uint64(len(payload)) > 0xFFFFFFFF {
		return fmt.Errorf("message of %d bytes cannot be framed", len(payload))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(payload)))
	if c, ok := w.(net.Conn); ok {
		bufs := net.Buffers{hdr[:], payload}
		_, err := bufs.WriteTo(c)
		return err
	}
	if bw, ok := w.(*bufio.Writer); ok {
		bw.Write(hdr[:])
		_, err := bw.Write(payload)
		return err
	}
	msg := make([]byte, 4+len(payload))
	copy(msg, hdr[:])
	copy(msg[4:], payload)
	_, err := w.Write(msg)
	return err
}

// The Transport namespace as written (the spelling of the VTP 2.0 examples),
// and the three spellings accepted on input (contract difference 12).
const transportNS = "http://www.telescope-networks.org/xml/Transport/v1.1"

var transportNamespaces = []string{
	"http://www.telescope-networks.org/xml/Transport/v1.1",
	"http://telescope-networks.org/xml/Transport/v1.1",
	"http://telescope-networks.org/schema/Transport/v1.1",
}

// transportHead is everything Comet writes before the role's value.
const transportHead = `<?xml version='1.0' encoding='UTF-8'?>` + "\n" +
	`<trn:Transport xmlns:trn="` + transportNS + `" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.0" xsi:schemaLocation="http://telescope-networks.org/schema/Transport/v1.1 http://www.telescope-networks.org/schema/Transport-v1.1.xsd" role="`

// transportTimeLayout is the TimeStamp format: UTC, seconds, literal Z.
const transportTimeLayout = "2006-01-02T15:04:05Z"

// param is one Meta/Param of a Transport message.
type param struct{ name, value string }

// transport is a Transport message to write, or one that was read.
type transport struct {
	role      string // iamalive, authenticate, ack, nak
	origin    string
	response  string // omitted when empty
	timestamp time.Time
	params    []param
	result    string // Meta/Result, omitted when empty
	// hasMeta writes <Meta/> even with no params or result (as Comet's
	// subscriber does in an authenticate response).
	hasMeta bool
	// filters are the XPath filters of an authenticate response, from
	// Param name="xpath-filter" and the legacy <filter type="xpath">.
	filters []string
}

// marshal writes the message exactly as Comet (lxml) serialises it.
func (t *transport) marshal() []byte {
	var b strings.Builder
	b.Grow(640 + 80*len(t.params) + len(t.result))
	b.WriteString(transportHead)
	b.WriteString(t.role)
	b.WriteString("\">\n  <Origin>")
	escapeText(&b, t.origin)
	b.WriteString("</Origin>\n")
	if t.response != "" {
		b.WriteString("  <Response>")
		escapeText(&b, t.response)
		b.WriteString("</Response>\n")
	}
	b.WriteString("  <TimeStamp>")
	b.WriteString(t.timestamp.UTC().Format(transportTimeLayout))
	b.WriteString("</TimeStamp>\n")
	switch {
	case len(t.params) > 0 || t.result != "":
		b.WriteString("  <Meta>\n")
		for _, p := range t.params {
			b.WriteString(`    <Param name="`)
			escapeAttr(&b, p.name)
			b.WriteString(`" value="`)
			escapeAttr(&b, p.value)
			b.WriteString("\"/>\n")
		}
		if t.result != "" {
			b.WriteString("    <Result>")
			escapeText(&b, t.result)
			b.WriteString("</Result>\n")
		}
		b.WriteString("  </Meta>\n")
	case t.hasMeta:
		b.WriteString("  <Meta/>\n")
	}
	b.WriteString("</trn:Transport>\n")
	return []byte(b.String())
}

// escapeText escapes character data as lxml does.
func escapeText(b *strings.Builder, s string) { escapeXML(b, s, false) }

// escapeAttr escapes an attribute value (double-quoted) as lxml does.
func escapeAttr(b *strings.Builder, s string) { escapeXML(b, s, true) }

// escapeXML writes s escaped for character data, or with attr for a
// double-quoted attribute value, where quotes, tabs and line ends are
// escaped as well.
func escapeXML(b *strings.Builder, s string, attr bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '&':
			b.WriteString("&amp;")
		case c == '<':
			b.WriteString("&lt;")
		case c == '>':
			b.WriteString("&gt;")
		case c == '\r':
			b.WriteString("&#13;")
		case attr && c == '"':
			b.WriteString("&quot;")
		case attr && c == '\n':
			b.WriteString("&#10;")
		case attr && c == '\t':
			b.WriteString("&#9;")
		default:
			b.WriteByte(c)
		}
	}
}

// softwareName is how this program names itself (IVOA softid note).
func softwareName(purpose string) string {
	if purpose == "" {
		return "comet/" + version + " go/" + strings.TrimPrefix(runtime.Version(), "go")
	}
	return "comet/" + version + " (" + purpose + ") go/" + strings.TrimPrefix(runtime.Version(), "go")
}

// Purpose tokens of the IVOA software-identification note, v1.1.
const (
	purposeCopy    = "IVOA-copy"
	purposeScience = "IVOA-science"
	purposeTest    = "IVOA-test"
)

// Builders for the messages each role writes.

func newAck(ivorn, local string, now time.Time) *transport {
	return &transport{role: "ack", origin: ivorn, response: local, timestamp: now}
}

func newNak(ivorn, local, reason string, now time.Time) *transport {
	return &transport{role: "nak", origin: ivorn, response: local, timestamp: now, result: "Event rejected: " + reason}
}

// newBrokerMessage is an iamalive or authenticate sent by a broadcaster.
func newBrokerMessage(role, local string, now time.Time) *transport {
	return &transport{role: role, origin: local, timestamp: now,
		params: []param{{"Server", softwareName("")}}}
}

// newIamaliveResponse answers a broker's iamalive.
func newIamaliveResponse(origin, local, purpose string, now time.Time) *transport {
	return &transport{role: "iamalive", origin: origin, response: local, timestamp: now,
		params: []param{{"User-Agent", softwareName(purpose)}}}
}

// newAuthenticateResponse answers a broker's authenticate with our filters
// (and extra Params, such as replay-since, when given).
func newAuthenticateResponse(origin, local, purpose string, filters []string, now time.Time, extra ...param) *transport {
	t := &transport{role: "authenticate", origin: origin, response: local, timestamp: now, hasMeta: true}
	for _, f := range filters {
		t.params = append(t.params, param{"xpath-filter", f})
	}
	t.params = append(t.params, extra...) // only when asked: replay-since (spoolwire.go)
	t.params = append(t.params, param{"User-Agent", softwareName(purpose)})
	return t
}

// transportError is a message that is not a Transport message we can read.
type transportError struct{ msg string }

func (e *transportError) Error() string { return e.msg }

// parseTransport reads a Transport message liberally: any of the three
// namespace spellings (or none), unknown elements ignored, timestamps not
// checked (as Comet). Both filter forms of an authenticate response are
// collected in order: every Param name="xpath-filter", then every legacy
// <filter type="xpath">.
func parseTransport(raw []byte) (*transport, error) {
	doc, err := parseDocument(raw)
	if err != nil {
		return nil, &transportError{"unparsable message: " + err.Error()}
	}
	root := doc.elem
	if root.local != "Transport" {
		return nil, &transportError{fmt.Sprintf("root element %s is not Transport", root.name())}
	}
	if root.space != "" && !isTransportNamespace(root.space) {
		return nil, &transportError{fmt.Sprintf("unknown Transport namespace %q", root.space)}
	}
	role, _ := root.attr("role")
	if !isTransportRole(role) {
		return nil, &transportError{fmt.Sprintf("unknown Transport role %q", role)}
	}
	t := &transport{role: role}
	var legacy []string
	for c := root.firstChild; c != nil; c = c.next {
		if c.kind != elementNode {
			continue
		}
		switch c.local {
		case "Origin":
			t.origin = strings.TrimSpace(c.stringValue())
		case "Response":
			t.response = strings.TrimSpace(c.stringValue())
		case "TimeStamp":
			if ts, err := time.Parse(time.RFC3339, strings.TrimSpace(c.stringValue())); err == nil {
				t.timestamp = ts
			}
		case "Meta":
			t.hasMeta = true
			for m := c.firstChild; m != nil; m = m.next {
				if m.kind != elementNode {
					continue
				}
				switch m.local {
				case "Param":
					name, _ := m.attr("name")
					value, _ := m.attr("value")
					t.params = append(t.params, param{name, value})
					if name == "xpath-filter" {
						t.filters = append(t.filters, value)
					}
				case "filter":
					if typ, _ := m.attr("type"); typ == "xpath" {
						legacy = append(legacy, m.stringValue())
					}
				case "Result":
					t.result = m.stringValue()
				}
			}
		}
	}
	t.filters = append(t.filters, legacy...)
	return t, nil
}

func isTransportNamespace(ns string) bool {
	for _, s := range transportNamespaces {
		if ns == s {
			return true
		}
	}
	return false
}

// param returns the value of the Meta/Param called name.
func (t *transport) param(name string) string {
	for _, p := range t.params {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

// software is what the peer says about itself (Server or User-Agent Param).
func (t *transport) software() string {
	if s := t.param("Server"); s != "" {
		return s
	}
	return t.param("User-Agent")
}

// transportRoles are the roles of Transport messages.
var transportRoles = []string{"iamalive", "ack", "nak", "authenticate"}

// isTransportRole reports whether role is one of the Transport roles.
func isTransportRole(role string) bool { return contains(transportRoles, role) }

// writeMessage writes one framed message with a write deadline.
func writeMessage(c net.Conn, payload []byte, timeout time.Duration) error {
	c.SetWriteDeadline(time.Now().Add(timeout))
	return writeFrame(c, payload)
}

// Why a connection ended, as the roles report it (checked with errors.Is;
// an error that wraps one of these may add detail).
var (
	errPeerClosed    = errors.New("peer closed the connection")
	errConnClosed    = errors.New("connection closed")
	errStopping      = errors.New("broker stopping")
	errTimedOut      = errors.New("timed out")
	errPeerNak       = errors.New("nak")
	errQueueFull     = errors.New("queue full")
	errNoIamalive    = errors.New("no answer to iamalive")
	errNotAcking     = errors.New("not acknowledging")
	errWriteFailed   = errors.New("write failed")
	errMidMessageEOF = errors.New("peer closed the connection in the middle of a message")
	errFilterBudget  = errors.New("filters over budget")
	errGarbage       = errors.New("repeated garbage")
)

// connEnd classifies a read failure: the error to report (one of the
// sentinels above, or the frame error itself) and the level to log it at.
func connEnd(err error) (error, slog.Level) {
	var fe *frameError
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return errPeerClosed, slog.LevelDebug
	case errors.As(err, &fe):
		return fe, slog.LevelWarn
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errMidMessageEOF, slog.LevelWarn
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return errTimedOut, slog.LevelInfo
	case errors.Is(err, net.ErrClosed):
		return errConnClosed, slog.LevelDebug
	}
	return err, slog.LevelInfo
}

// describeReadError turns a read failure into a log message and level.
func describeReadError(err error) (string, slog.Level) {
	e, level := connEnd(err)
	return e.Error(), level
}
