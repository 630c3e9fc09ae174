// spoolwire_http.go owns the status server's spool routes (contract
// section 9): /events (JSON: the newest spooled events), /events/IVORN (one
// event's exact bytes) and / (a page for a person: listeners, peers, the
// last events and the last hour's rate as an inline SVG chart). The status
// server (httpstatus.go) calls route for these paths; its limits (one
// request per connection, header window, connection caps) hold.
//
// Invariants: the routes only read (one status snapshot, one look at the
// spool); the page fetches nothing from elsewhere (no script, no external
// style or font, no image but the inline SVG) and every peer-given string
// on it is HTML-escaped.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits of /events.
const (
	spoolwEventsDefault = 100
	spoolwEventsMax     = 1000
	spoolwPageEvents    = 20 // events on the page
)

// spoolwIsRoute reports whether path is one of the spool's routes.
func spoolwIsRoute(path string) bool {
	return path == "/" || path == "/events" || strings.HasPrefix(path, "/events/")
}

// spoolwReadHTTPRequest is readHTTPRequest keeping the query: it reads a
// request line and headers and returns the path and the raw query (after
// '?', without a fragment). A non-zero code is the error to answer with.
func spoolwReadHTTPRequest(r *bufio.Reader) (method, path, query string, code int) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", "", 400
	}
	parts := strings.Fields(line)
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return "", "", "", 400
	}
	method, path = parts[0], parts[1]
	if i := strings.IndexByte(path, '#'); i >= 0 {
		path = path[:i]
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	for {
		h, err := r.ReadString('\n')
		if err != nil {
			if r.Buffered() == 0 && errors.Is(err, io.EOF) {
				return method, path, query, 431 // the header limit cut it off
			}
			return method, path, query, 400
		}
		if strings.TrimRight(h, "\r\n") == "" {
			return method, path, query, 0
		}
	}
}

// route answers one of the spool's routes.
func (c *spoolWire) route(path, query string) (int, string, []byte) {
	const text = "text/plain; charset=utf-8"
	switch {
	case path == "/":
		return 200, "text/html; charset=utf-8", c.page()
	case path == "/events":
		q, err := url.ParseQuery(query)
		if err != nil {
			return 400, text, []byte("bad query\n")
		}
		limit := spoolwEventsDefault
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return 400, text, []byte("limit: want a positive whole number\n")
			}
			limit = min(n, spoolwEventsMax)
		}
		var since time.Time
		if v := q.Get("since"); v != "" {
			if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return 400, text, []byte("since: want an RFC 3339 time such as 2026-05-04T03:02:01Z\n")
			}
		}
		return 200, "application/json", c.eventsJSON(limit, since)
	default: // /events/IVORN
		ivorn, err := url.PathUnescape(strings.TrimPrefix(path, "/events/"))
		if err != nil || ivorn == "" {
			return 400, text, []byte("bad ivorn: percent-encode it (# as %23)\n")
		}
		if c == nil || c.sp == nil {
			return 404, text, []byte("not found: the spool is off\n")
		}
		e, ok := c.sp.get(ivorn)
		if !ok {
			return 404, text, []byte("not found: no spooled event with this ivorn\n")
		}
		return 200, "application/xml", e.raw
	}
}

// spoolwEventJSON is one event of /events.
type spoolwEventJSON struct {
	Seq      uint64 `json:"seq"`
	Ivorn    string `json:"ivorn"`
	Role     string `json:"role"`
	Received string `json:"received"`
	Source   string `json:"source"`
	Bytes    int    `json:"bytes"`
}

// spoolwTimeLayout is RFC 3339 with milliseconds, in UTC.
const spoolwTimeLayout = "2006-01-02T15:04:05.000Z07:00"

func (c *spoolWire) eventsJSON(limit int, since time.Time) []byte {
	doc := struct {
		Spool  string            `json:"spool"`
		Events []spoolwEventJSON `json:"events"`
	}{Spool: "off", Events: []spoolwEventJSON{}}
	if c != nil && c.sp != nil {
		doc.Spool = "on"
		for _, e := range c.sp.recent(limit, since) {
			doc.Events = append(doc.Events, spoolwEventJSON{Seq: e.seq, Ivorn: e.ivorn, Role: e.role,
				Received: e.received.UTC().Format(spoolwTimeLayout), Source: e.source, Bytes: e.size})
		}
	}
	b, _ := json.Marshal(doc)
	return append(b, '\n')
}

// page renders the status page.
func (c *spoolWire) page() []byte {
	b := c.b
	st := b.status()
	now := b.now()
	var w strings.Builder
	esc := func(s string) { spoolwHTMLEscaper.WriteString(&w, s) }
	w.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>comet `)
	esc(st.LocalIVO)
	w.WriteString(`</title>
<style>
body{font-family:system-ui,sans-serif;margin:0 auto;padding:0.6em;max-width:40em;line-height:1.35;color:#222;background:#fafafa}
h1{font-size:1.2em;margin:0.2em 0;overflow-wrap:anywhere}h2{font-size:1.05em;margin:1.1em 0 0.3em}
ul{list-style:none;margin:0;padding:0}li{padding:0.35em 0;border-bottom:1px solid #ddd;overflow-wrap:anywhere}
.up{color:#06702a}.down{color:#b00020}.dim{color:#666;font-size:0.9em}svg{width:100%;height:auto;background:#fff;border:1px solid #ddd}
</style></head><body>
<h1>comet `)
	esc(st.LocalIVO)
	w.WriteString("</h1>\n<p class=\"dim\">")
	esc(fmt.Sprintf("%s, up %s, at %s", st.Version, now.Sub(st.Started).Round(time.Second), now.UTC().Format(spoolwTimeLayout)))
	w.WriteString("</p>\n<h2>Listeners</h2>\n<ul>\n")
	if len(st.Listeners) == 0 {
		w.WriteString("<li class=\"dim\">none</li>\n")
	}
	for _, l := range st.Listeners {
		w.WriteString("<li>")
		esc(l.Role + " " + l.Address)
		if l.Up {
			w.WriteString(` <span class="up">up</span></li>` + "\n")
		} else {
			w.WriteString(` <span class="down">down</span></li>` + "\n")
		}
	}
	w.WriteString("</ul>\n<h2>Subscribers and upstreams</h2>\n<ul>\n")
	if len(st.Peers) == 0 {
		w.WriteString("<li class=\"dim\">none</li>\n")
	}
	for _, p := range st.Peers {
		w.WriteString("<li>")
		esc(p.Role + " " + p.Address)
		cls := "up"
		if p.State != "connected" {
			cls = "down"
		}
		w.WriteString(` <span class="` + cls + `">`)
		esc(p.State)
		w.WriteString("</span>")
		w.WriteString("<br><span class=\"dim\">")
		var parts []string
		if !p.Since.IsZero() {
			parts = append(parts, "for "+now.Sub(p.Since).Round(time.Second).String())
		}
		parts = append(parts, strconv.FormatInt(p.Delivered, 10)+" events")
		if p.Software != "" {
			parts = append(parts, rateTruncate(p.Software, 120))
		}
		esc(strings.Join(parts, " · "))
		w.WriteString("</span></li>\n")
	}
	w.WriteString("</ul>\n<h2>Accepted events, last hour</h2>\n")
	w.WriteString(spoolwChart(c.rates(now)))
	w.WriteString("\n<h2>Last events</h2>\n")
	if c.sp == nil {
		w.WriteString("<p class=\"dim\">The spool is off (--spool-max-age 0).</p>\n")
	} else {
		sst := c.sp.stats()
		w.WriteString("<p class=\"dim\">")
		esc(fmt.Sprintf("spool: %d events, %d bytes on disk", sst.events, sst.bytes))
		w.WriteString("</p>\n<ul>\n")
		recent := c.sp.recent(spoolwPageEvents, time.Time{})
		if len(recent) == 0 {
			w.WriteString("<li class=\"dim\">none yet</li>\n")
		}
		for _, e := range recent {
			w.WriteString(`<li><a href="/events/`)
			esc(strings.ReplaceAll(url.PathEscape(e.ivorn), "#", "%23"))
			w.WriteString(`">`)
			esc(e.ivorn)
			w.WriteString("</a><br><span class=\"dim\">")
			parts := []string{e.received.UTC().Format("2006-01-02 15:04:05"), e.role, e.source, strconv.Itoa(e.size) + " bytes"}
			if v := c.verdict(e.ivorn); v != "" {
				parts = append(parts, "signature "+v)
			}
			esc(strings.Join(parts, " · "))
			w.WriteString("</span></li>\n")
		}
		w.WriteString("</ul>\n")
	}
	w.WriteString("<p class=\"dim\">JSON: <a href=\"/status\">/status</a>, <a href=\"/events\">/events</a>; <a href=\"/metrics\">/metrics</a></p>\n</body></html>\n")
	return []byte(w.String())
}

// spoolwHTMLEscaper escapes text for HTML content and attribute values (the
// html package would bring its entity table into the binary).
var spoolwHTMLEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;")

// spoolwChart draws per-minute counts (oldest first) as a bar chart.
func spoolwChart(counts []int64) string {
	const width, height, top, bottom = 360, 130, 20, 18
	var peak, total int64
	for _, n := range counts {
		peak = max(peak, n)
		total += n
	}
	var w strings.Builder
	fmt.Fprintf(&w, `<svg viewBox="0 0 %d %d" role="img" aria-label="accepted events per minute over the last hour: %d in all, at most %d in a minute">`, width, height, total, peak)
	fmt.Fprintf(&w, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#999"/>`, height-bottom, width, height-bottom)
	bar := float64(width) / float64(len(counts))
	for i, n := range counts {
		if n == 0 || peak == 0 {
			continue
		}
		h := float64(height-top-bottom) * float64(n) / float64(peak)
		fmt.Fprintf(&w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3465a4"><title>%d</title></rect>`,
			float64(i)*bar+0.5, float64(height-bottom)-h, bar-1, h, n)
	}
	fmt.Fprintf(&w, `<text x="3" y="14" font-size="12" fill="#444">peak %d/min, %d in the hour</text>`, peak, total)
	fmt.Fprintf(&w, `<text x="3" y="%d" font-size="12" fill="#444">60 min ago</text><text x="%d" y="%d" font-size="12" fill="#444" text-anchor="end">now</text></svg>`, height-4, width-3, height-4)
	return w.String()
}
