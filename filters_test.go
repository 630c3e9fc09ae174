package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// filterEvent is a test event with a magnitude Param and a role.
func filterEvent(local string, magnitude int, role string) []byte {
	return []byte(fmt.Sprintf(`<?xml version='1.0' encoding='UTF-8'?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://test.local/sample#%s" role="%s" version="2.0">
  <Who><AuthorIVORN>ivo://test.local/sample</AuthorIVORN><Date>2026-11-22T02:14:27</Date></Who>
  <What><Param name="magnitude" value="%d"/></What>
</voe:VOEvent>
`, local, role, magnitude))
}

// TestFilteredSubscribers: two subscribers with different filters on one
// broadcaster each receive exactly the matching events, in order; one whose
// only filter does not compile receives nothing; one with no filters
// receives everything.
func TestFilteredSubscribers(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	bright := dialSubscriber(t, tb.broadcastAddr(), []string{`//Param[@name="magnitude" and @value < 10]`})
	tests := dialSubscriber(t, tb.broadcastAddr(), []string{`/*[local-name()="VOEvent" and @role="test"]`, `//Param[@value = 99]`})
	invalid := dialSubscriber(t, tb.broadcastAddr(), []string{`//Param[`})
	all := dialSubscriber(t, tb.broadcastAddr(), nil)
	waitFor(t, "filters installed", func() bool {
		n := 0
		for _, p := range tb.broadcasters[0].peers() {
			if p.Filters > 0 {
				n++
			}
		}
		return n == 3
	})
	type sent struct {
		raw          []byte
		bright, test bool
	}
	var evs []sent
	for i := range 24 {
		mag := []int{5, 15, 99}[i%3]
		role := []string{"observation", "test"}[i%2]
		raw := filterEvent(fmt.Sprintf("f-%02d", i), mag, role)
		evs = append(evs, sent{raw, mag < 10, role == "test" || mag == 99})
		if r := rawExchange(t, tb.receiveAddr(), raw); r == nil || r.role != "ack" {
			t.Fatalf("submit %d: %+v", i, r)
		}
	}
	expect := func(name string, s *testSubscriber, want func(sent) bool) {
		t.Helper()
		for _, e := range evs {
			if !want(e) {
				continue
			}
			got := s.nextEvent(3 * time.Second)
			if !bytes.Equal(got, e.raw) {
				ri, _ := scanRoot(got)
				want, _ := scanRoot(e.raw)
				t.Fatalf("%s: got %q, want %q (in order)", name, ri.ivorn, want.ivorn)
			}
		}
		if extra := s.nextEvent(200 * time.Millisecond); extra != nil {
			ri, _ := scanRoot(extra)
			t.Errorf("%s: unexpected %s", name, ri.ivorn)
		}
	}
	expect("bright", bright, func(e sent) bool { return e.bright })
	expect("tests", tests, func(e sent) bool { return e.test })
	expect("all", all, func(sent) bool { return true })
	expect("invalid", invalid, func(sent) bool { return false })
	if !strings.Contains(tb.logs.String(), "does not compile") {
		t.Error("invalid filter not logged")
	}
	// The receiver's validation tree served every filter: no extra parse.
	if n := tb.m.treeParses.Load(); n != 0 {
		t.Errorf("%d extra parses for filters", n)
	}
}

// TestRelayParsesOnce: an event from upstream is parsed once however many
// subscribers filter it: the well-formedness check of admission builds the
// one tree, which the filters share (and which is released at once when no
// subscriber filters).
func TestRelayParsesOnce(t *testing.T) {
	a, b := startRelayPair(t)
	plain := dialSubscriber(t, b.broadcastAddr(), nil)
	waitFor(t, "B subscribed", func() bool { return subscriberCount(a.broker) == 1 })
	if r := rawExchange(t, a.receiveAddr(), filterEvent("p-0", 5, "observation")); r == nil || r.role != "ack" {
		t.Fatalf("submit: %+v", r)
	}
	if plain.nextEvent(3*time.Second) == nil {
		t.Fatal("plain subscriber got nothing")
	}
	if n, all := b.m.treeParses.Load(), b.m.parses.Load(); n != 0 || all != 1 {
		t.Fatalf("parsed %d times for filters and %d in all with no filtering subscriber, want 0 and 1", n, all)
	}
	var filtered []*testSubscriber
	for range 5 {
		filtered = append(filtered, dialSubscriber(t, b.broadcastAddr(), []string{`//Param`}))
	}
	waitFor(t, "filters installed", func() bool {
		n := 0
		for _, p := range b.broadcasters[0].peers() {
			if p.Filters > 0 {
				n++
			}
		}
		return n == 5
	})
	if r := rawExchange(t, a.receiveAddr(), filterEvent("p-1", 5, "observation")); r == nil || r.role != "ack" {
		t.Fatalf("submit: %+v", r)
	}
	for i, s := range filtered {
		if s.nextEvent(3*time.Second) == nil {
			t.Fatalf("filtered subscriber %d got nothing", i)
		}
	}
	if n, all := b.m.treeParses.Load(), b.m.parses.Load(); n != 0 || all != 2 {
		t.Errorf("parsed %d times for filters and %d in all (two events) for five filtering subscribers, want 0 and 2", n, all)
	}
}

func TestFilterOptionRefusesBadXPath(t *testing.T) {
	_, err := parseArgs(t, "--remote", "a", "--filter", "//Param[@name=")
	if err == nil || !strings.Contains(err.Error(), "--filter") || !strings.Contains(err.Error(), "position") {
		t.Errorf("err = %v, want it to name the filter and the position", err)
	}
}

func TestSubscriberFilterLimit(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	many := make([]string, maxFiltersPerSubscriber+100)
	for i := range many {
		many[i] = fmt.Sprintf("//Param[@value=%d]", i)
	}
	dialSubscriber(t, tb.broadcastAddr(), many)
	waitFor(t, "filters installed", func() bool {
		p := tb.broadcasters[0].peers()
		return len(p) == 1 && p[0].Filters > 0
	})
	if p := tb.broadcasters[0].peers(); p[0].Filters != maxFiltersPerSubscriber {
		t.Errorf("%d filters installed, want the limit %d", p[0].Filters, maxFiltersPerSubscriber)
	}
	if !strings.Contains(tb.logs.String(), "too many filters") {
		t.Error("not logged")
	}
}
