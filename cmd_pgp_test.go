package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs a registered command and returns its exit code and output.
func runCmd(t *testing.T, name string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := commands[name].run(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestVerifyCommand(t *testing.T) {
	ring := filepath.Join(pgpVectors, "keys", "keyring.pub.gpg")
	good := filepath.Join(pgpVectors, "signed", "ed25519-sha256-event3.xml")
	bad := filepath.Join(pgpVectors, "negative", "tampered-byte.xml")
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"one valid", []string{"--keyring", ring, good}, 0,
			[]string{good + ": valid signature by B9C0E4F61CC4F0727A3410BBA99AC06EA738F249 \"VOEvent test key ed25519 (TEST ONLY) <ed25519@test.invalid>\""}},
		{"one invalid", []string{"--keyring", ring, good, bad}, 1, []string{bad + ": invalid: "}},
		{"tsv", []string{"--tsv", "--keyring", ring, good, bad}, 0, []string{
			"file\tverdict\tsigner_fpr\treason\n",
			good + "\tvalid\tB9C0E4F61CC4F0727A3410BBA99AC06EA738F249\t-\n",
			bad + "\tinvalid\t-\tsignature does not verify"}},
		{"directory", []string{"--tsv", "--keyring", ring, filepath.Join(pgpVectors, "events")}, 0, []string{
			filepath.Join(pgpVectors, "events", "event1.xml") + "\tunsigned\t-\t",
			filepath.Join(pgpVectors, "events", "transport-ack.xml") + "\tunsigned\t-\t"}},
		{"two keyrings", []string{"--keyring", filepath.Join(pgpVectors, "keys", "p256.pub.asc"), "--keyring", filepath.Join(pgpVectors, "keys", "ed25519.pub.gpg"), good}, 0, []string{"valid signature"}},
		{"missing file", []string{"--tsv", "--keyring", ring, "no-such-file.xml"}, 1, nil},
		{"no keyring", []string{good}, 2, nil},
		{"no files", []string{"--keyring", ring}, 2, nil},
		{"bad keyring", []string{"--keyring", good, good}, 1, nil},
		{"unknown flag", []string{"--nope"}, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "verify", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			for _, want := range tc.contains {
				if !strings.Contains(out, want) {
					t.Errorf("output %q lacks %q", out, want)
				}
			}
		})
	}
}

func TestTSVField(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "-"},
		{"plain text", "plain text"},
		{"a\tb\nc\rd\\e|f\x01", `a\tb\nc\rd\\e\|f\x01`},
		{"Zoë 東京", "Zoë 東京"},
	}
	for _, tc := range tests {
		if got := tsvField(tc.in); got != tc.want {
			t.Errorf("tsvField(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestKeygenSignVerify makes a key with comet keygen, signs with comet sign
// and checks with comet verify.
func TestKeygenSignVerify(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "alerts")
	code, out, errOut := runCmd(t, "keygen", "--uid", "Alerts <alerts@example.org>", "-o", prefix)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "fingerprint ") {
		t.Errorf("keygen output %q", out)
	}
	st, err := os.Stat(prefix + ".sec.asc")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("secret key mode %v, want 0600", st.Mode().Perm())
	}
	if code, _, _ := runCmd(t, "keygen", "-o", prefix); code != 1 {
		t.Errorf("keygen over existing files: exit %d, want 1", code)
	}

	event := filepath.Join(pgpVectors, "events", "event3.xml")
	signedPath := filepath.Join(dir, "signed.xml")
	if code, _, errOut := runCmd(t, "sign", "--key", prefix+".sec.asc", "-o", signedPath, event); code != 0 {
		t.Fatalf("sign: exit %d: %s", code, errOut)
	}
	code, stdoutSigned, errOut := runCmd(t, "sign", "--key", prefix+".sec.asc", event)
	if code != 0 || !strings.Contains(stdoutSigned, "=====BEGIN PGP SIGNATURE=====") {
		t.Fatalf("sign to stdout: exit %d: %s", code, errOut)
	}
	code, out, errOut = runCmd(t, "verify", "--keyring", prefix+".pub.asc", signedPath)
	if code != 0 || !strings.Contains(out, "Alerts <alerts@example.org>") {
		t.Errorf("verify: exit %d: %s %s", code, out, errOut)
	}
	for _, args := range [][]string{
		{"--key", prefix + ".pub.asc", event},         // a public key cannot sign
		{"--key", prefix + ".sec.asc", signedPath},    // already signed
		{"--key", prefix + ".sec.asc", "no-such.xml"}, // unreadable
		{"--key", "no-such.asc", event},               // no key
	} {
		if code, _, _ := runCmd(t, "sign", args...); code != 1 {
			t.Errorf("sign %v: exit %d, want 1", args, code)
		}
	}
	if code, _, _ := runCmd(t, "sign", event); code != 2 {
		t.Errorf("sign without --key: exit %d, want 2", code)
	}
}

// TestGnuPGInterop checks comet's signatures with gpgv and comet keygen's
// key with gpg. It is skipped where GnuPG is not installed.
func TestGnuPGInterop(t *testing.T) {
	gpg, err1 := exec.LookPath("gpg")
	gpgv, err2 := exec.LookPath("gpgv")
	if err1 != nil || err2 != nil {
		t.Skip("gpg or gpgv not installed; skipping the GnuPG interoperability test")
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "gnupg")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// gpg --import of a secret key starts a gpg-agent for this home; stop it
	// before the directory goes away.
	t.Cleanup(func() {
		if gpgconf, err := exec.LookPath("gpgconf"); err == nil {
			cmd := exec.Command(gpgconf, "--kill", "gpg-agent")
			cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
			cmd.Run()
		}
	})
	run := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home, "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
		}
		return string(out)
	}

	prefix := filepath.Join(dir, "new")
	if code, _, errOut := runCmd(t, "keygen", "--uid", "Interop <interop@example.org>", "-o", prefix); code != 0 {
		t.Fatalf("keygen: %s", errOut)
	}
	t.Run("keygen key imports", func(t *testing.T) {
		out := run(t, gpg, "--batch", "--import", prefix+".pub.asc")
		if !strings.Contains(out, "imported: 1") {
			t.Errorf("gpg --import public key: %s", out)
		}
		out = run(t, gpg, "--batch", "--import", prefix+".sec.asc")
		if !strings.Contains(out, "secret keys imported: 1") {
			t.Errorf("gpg --import secret key: %s", out)
		}
	})

	pubRing := filepath.Join(dir, "ring.gpg")
	var ring []byte
	for _, f := range []string{filepath.Join(pgpVectors, "keys", "keyring.pub.gpg"), prefix + ".pub.asc"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bin, err := dearmorKeys(data)
		if err != nil {
			t.Fatal(err)
		}
		ring = append(ring, bin...)
	}
	if err := os.WriteFile(pubRing, ring, 0o644); err != nil {
		t.Fatal(err)
	}
	keys := []string{
		prefix + ".sec.asc",
		filepath.Join(pgpVectors, "keys", "secret", "rsa2048.TEST-ONLY.sec.asc"),
		filepath.Join(pgpVectors, "keys", "secret", "p384.TEST-ONLY.sec.asc"),
		filepath.Join(pgpVectors, "keys", "secret", "dsa2048.TEST-ONLY.sec.asc"),
		filepath.Join(pgpVectors, "keys", "secret", "subkey-ed25519.TEST-ONLY.sec.asc"),
	}
	for i, key := range keys {
		t.Run("gpgv "+filepath.Base(key), func(t *testing.T) {
			event := filepath.Join(pgpVectors, "events", []string{"event1.xml", "event2.xml", "event3.xml", "transport-ack.xml"}[i%4])
			code, signed, errOut := runCmd(t, "sign", "--key", key, event)
			if code != 0 {
				t.Fatalf("sign: %s", errOut)
			}
			sigPath, dataPath := extractSignature(t, []byte(signed), dir)
			out := run(t, gpgv, "--keyring", pubRing, sigPath, dataPath)
			if !strings.Contains(out, "Good signature") {
				t.Errorf("gpgv: %s", out)
			}
		})
	}
	t.Run("gpg-made keys", func(t *testing.T) {
		if os.Getenv("COMET_GPG_KEYGEN") == "" {
			t.Skip("GnuPG key generation can take a minute when entropy is short; set COMET_GPG_KEYGEN=1 to run it")
		}
		// GnuPG's Ed25519 key with a Curve25519 encryption subkey, once
		// without and once with a passphrase.
		for _, pass := range []string{"", "secret"} {
			uid := "made" + pass + "@example.org"
			run(t, gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase", pass, "--quick-gen-key", uid, "future-default", "default", "never")
			sec, pub := filepath.Join(dir, uid+".sec.asc"), filepath.Join(dir, uid+".pub.asc")
			run(t, gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase", pass, "--armor", "--output", sec, "--export-secret-keys", uid)
			run(t, gpg, "--batch", "--armor", "--output", pub, "--export", uid)
			signed := filepath.Join(dir, uid+".xml")
			code, _, errOut := runCmd(t, "sign", "--key", sec, "-o", signed, filepath.Join(pgpVectors, "events", "event2.xml"))
			if pass != "" {
				if code != 1 || !strings.Contains(errOut, "passphrase-protected") {
					t.Errorf("sign with a protected key: exit %d: %s", code, errOut)
				}
				continue
			}
			if code != 0 {
				t.Fatalf("sign: %s", errOut)
			}
			if code, out, errOut := runCmd(t, "verify", "--keyring", pub, signed); code != 0 {
				t.Errorf("verify: %s %s", out, errOut)
			}
		}
	})
	t.Run("gpg-exported secret key signs", func(t *testing.T) {
		exported := filepath.Join(dir, "exported.sec.asc")
		run(t, gpg, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--output", exported, "--export-secret-keys", "interop@example.org")
		code, signed, errOut := runCmd(t, "sign", "--key", exported, filepath.Join(pgpVectors, "events", "event1.xml"))
		if code != 0 {
			t.Fatalf("sign with the gpg export: %s", errOut)
		}
		sigPath, dataPath := extractSignature(t, []byte(signed), dir)
		run(t, gpgv, "--keyring", pubRing, sigPath, dataPath)
	})
}

// extractSignature does by hand what the README tells a GnuPG user to do:
// cut out the comment, turn ===== back into -----, and write the root
// element's bytes.
func extractSignature(t *testing.T, signed []byte, dir string) (sigPath, dataPath string) {
	t.Helper()
	start, end, err := rootElementSpan(signed)
	if err != nil {
		t.Fatal(err)
	}
	tail := signed[end:]
	i := bytes.Index(tail, []byte("<!--"))
	j := bytes.Index(tail, []byte("-->"))
	if i != 0 || j < 0 {
		t.Fatalf("no signature comment right after the root element")
	}
	sig := bytes.ReplaceAll(tail[4:j], []byte("====="), []byte("-----"))
	sigPath, dataPath = filepath.Join(dir, "sig.asc"), filepath.Join(dir, "root.bin")
	if err := os.WriteFile(sigPath, sig, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dataPath, signed[start:end], 0o644); err != nil {
		t.Fatal(err)
	}
	return sigPath, dataPath
}
