package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"net"
	"os"
	"testing"
)

// medianEventFile is a median-sized (about 4.3 KB) real event from the corpus.
const medianEventFile = "testdata/corpus/voevents/arc2023-06__nasa.gsfc.gcn__MAXI__Known_source_Pos_2023-06-13T06_45_17.00_1008892814-0-654.xml"

func medianEvent(tb testing.TB) []byte {
	tb.Helper()
	raw, err := os.ReadFile(medianEventFile)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// tokenLoop is the baseline the XML budgets are measured against: a bare
// encoding/xml token loop over the bytes.
func tokenLoop(tb testing.TB, raw []byte) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func splitHostPort(tb testing.TB, addr string) (string, string, error) {
	tb.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatal(err)
	}
	return h, p, nil
}
