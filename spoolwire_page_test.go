// spoolwire_page_test.go takes a screenshot of the status page with Debian's
// headless chromium, when it is installed.
package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestSpoolwPageScreenshot renders the status page in Debian's headless
// chromium, when installed, on a phone-sized window. With
// COMET_SPOOLW_SCREENSHOT=FILE the PNG is kept there (docs/status-page.png
// was made so).
func TestSpoolwPageScreenshot(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium); the page's content is checked by TestSpoolwHTTP")
	}
	cfg := receiveConfig(t)
	cfg.httpAddr = "127.0.0.1:0"
	cfg.remotes = []string{"127.0.0.1:9"} // an upstream that never answers: "backoff"
	tb := startBroker(t, cfg)
	dialSubscriber(t, tb.broadcastAddr(), []string{})
	spoolwSend(t, tb, "GRB261201A", "GRB261201B", "IceCube-261201")
	// A made-up hour of traffic for the chart.
	c := tb.spoolw
	now := time.Now().Unix() / 60
	c.mu.Lock()
	for k := int64(0); k < spoolwRateBuckets; k++ {
		m := now - k
		i := int(m % spoolwRateBuckets)
		c.minutes[i], c.counts[i] = m, (k*7)%23+(k%5)*3
	}
	c.mu.Unlock()

	out := filepath.Join(t.TempDir(), "page.png")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-sync", "--disable-component-update", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(), "--window-size=412,960", "--screenshot="+out, "http://"+tb.http.addr()+"/")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, msg)
	}
	png, err := os.ReadFile(out)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 5000 {
		t.Fatalf("screenshot: %v, %d bytes", err, len(png))
	}
	if keep := os.Getenv("COMET_SPOOLW_SCREENSHOT"); keep != "" {
		if err := os.WriteFile(keep, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %d bytes", len(png))
}
