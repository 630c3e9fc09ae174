// cmd_pgp.go owns the signature commands: `comet verify`, `comet sign` and
// `comet keygen`. The OpenPGP work itself lives in pgp*.go.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func init() {
	registerCommand(&command{name: "verify", summary: "check the OpenPGP signatures embedded in event files", run: runVerify})
	registerCommand(&command{name: "sign", summary: "embed an OpenPGP signature in an event file", run: runSign})
	registerCommand(&command{name: "keygen", summary: "make a new Ed25519 OpenPGP signing key", run: runKeygen})
}

// pgpFileList is a repeatable string flag.
type pgpFileList []string

func (l *pgpFileList) String() string     { return strings.Join(*l, ",") }
func (l *pgpFileList) Set(v string) error { *l = append(*l, v); return nil }

// runVerify is `comet verify [--tsv] --keyring FILE... PATH...`. Without
// --tsv it exits 0 only if every signature is valid; with --tsv the verdicts
// are the report, so it exits 0 once every file has been judged (1 if one
// could not be read), which is what scripts comparing reports expect.
func runVerify(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	tsv := fs.Bool("tsv", false, "print `file verdict signer_fpr reason` rows with a header")
	var keyrings pgpFileList
	fs.Var(&keyrings, "keyring", "trusted public keys, binary or armored (repeatable)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: comet verify [--tsv] --keyring FILE [--keyring FILE]... PATH...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if len(keyrings) == 0 || fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	var kr *keyring
	for _, path := range keyrings {
		k, err := loadKeyringFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "comet verify: %v\n", err)
			return exitFail
		}
		for _, why := range k.skipped {
			fmt.Fprintf(stderr, "comet verify: keyring %s: left out %s\n", path, why)
		}
		if kr == nil {
			kr = k
		} else {
			kr.merge(k)
		}
	}
	files, err := expandPaths(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "comet verify: %v\n", err)
		return exitFail
	}
	if *tsv {
		fmt.Fprintln(stdout, "file\tverdict\tsigner_fpr\treason")
	}
	status := exitOK
	now := time.Now()
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stderr, "comet verify: %v\n", err)
			status = exitFail
			continue
		}
		res := verifyEvent(raw, kr, now)
		if res.verdict != verdictValid && !*tsv {
			status = exitFail
		}
		if *tsv {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", tsvField(path), res.verdict, tsvField(res.signer), tsvField(res.reason))
			continue
		}
		if res.verdict == verdictValid {
			fmt.Fprintf(stdout, "%s: valid signature by %s %q\n", path, res.signer, res.userID)
		} else {
			fmt.Fprintf(stdout, "%s: %s: %s\n", path, res.verdict, res.reason)
		}
	}
	return status
}

// tsvField escapes a TSV field as contract §3 says (backslash, tab, LF, CR,
// '|' and other control bytes); an empty field is "-".
func tsvField(s string) string {
	if s == "" {
		return "-"
	}
	return tsvEscape(s)
}

// runSign is `comet sign --key FILE [-o OUT] PATH`.
func runSign(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyPath := fs.String("key", "", "unprotected secret key (from comet keygen or gpg --export-secret-keys)")
	out := fs.String("o", "-", "output file; - is standard output")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: comet sign --key FILE [-o OUT] PATH")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *keyPath == "" || fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	sk, err := loadSecretKeyFile(*keyPath)
	if err != nil {
		fmt.Fprintf(stderr, "comet sign: %v\n", err)
		return exitFail
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "comet sign: %v\n", err)
		return exitFail
	}
	signed, err := signEvent(raw, sk, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "comet sign: %s: %v\n", fs.Arg(0), err)
		return exitFail
	}
	if *out == "-" {
		if _, err := stdout.Write(signed); err != nil {
			fmt.Fprintf(stderr, "comet sign: write: %v\n", err)
			return exitFail
		}
		return exitOK
	}
	if err := os.WriteFile(*out, signed, 0o644); err != nil {
		fmt.Fprintf(stderr, "comet sign: %v\n", err)
		return exitFail
	}
	return exitOK
}

// runKeygen is `comet keygen [--uid "Name <email>"] [-o PREFIX]`.
func runKeygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	uid := fs.String("uid", "", `user ID, for example "Observatory Alerts <alerts@example.org>" (default: "Comet signing key <USER@HOST>")`)
	prefix := fs.String("o", "comet-signing-key", "write PREFIX.pub.asc and PREFIX.sec.asc (mode 0600)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, `usage: comet keygen [--uid "Name <email>"] [-o PREFIX]`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 0 || *prefix == "" {
		fs.Usage()
		return exitUsage
	}
	if *uid == "" {
		user, host := os.Getenv("USER"), "localhost"
		if h, err := os.Hostname(); err == nil {
			host = h
		}
		if user == "" {
			user = "comet"
		}
		*uid = fmt.Sprintf("Comet signing key <%s@%s>", user, host)
	}
	pub, sec, err := generateKey(*uid, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "comet keygen: %v\n", err)
		return exitFail
	}
	pubPath, secPath := *prefix+".pub.asc", *prefix+".sec.asc"
	if err := writeNewFile(secPath, sec, 0o600); err != nil {
		fmt.Fprintf(stderr, "comet keygen: %v\n", err)
		return exitFail
	}
	if err := writeNewFile(pubPath, pub, 0o644); err != nil {
		os.Remove(secPath)
		fmt.Fprintf(stderr, "comet keygen: %v\n", err)
		return exitFail
	}
	kr, err := loadKeyring(pub)
	if err != nil {
		fmt.Fprintf(stderr, "comet keygen: reading back the new key: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "fingerprint %s\nuser ID     %s\npublic key  %s\nsecret key  %s (keep it private)\n",
		kr.entities[0].primary.fprHex(), *uid, pubPath, secPath)
	return exitOK
}

// writeNewFile creates path with mode perm and writes data; it never
// overwrites an existing file.
func writeNewFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s already exists; not overwriting it", path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
