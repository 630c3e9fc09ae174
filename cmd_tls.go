// cmd_tls.go owns `comet tls-keygen --name NAME -o PREFIX` (a self-signed
// ECDSA P-256 certificate and its key) and `comet pin FILE` (the pin of a
// PEM certificate), contract section 7.
//
// Invariants: tls-keygen never overwrites a file (both are created with
// O_EXCL, and the certificate is removed again if the key cannot be
// written); the key is PKCS#8 PEM, mode 0600; pins print in lower case.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// tlsKeygenValidity is how long a tls-keygen certificate is valid.
const tlsKeygenValidity = 10 * 365 * 24 * time.Hour

func init() {
	registerCommand(&command{name: "tls-keygen", summary: "make a self-signed TLS certificate and key, print its pin", run: runTLSKeygen})
	registerCommand(&command{name: "pin", summary: "print the pin (sha256:HEX) of a PEM certificate", run: runPin})
}

// tlsSelfSigned makes a self-signed ECDSA P-256 certificate for name, valid
// from notBefore to notAfter, usable by servers and clients. It returns the
// certificate and PKCS#8 key, both PEM.
func tlsSelfSigned(name string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	switch ip := net.ParseIP(name); {
	case ip != nil:
		tmpl.IPAddresses = []net.IP{ip}
	case strings.HasPrefix(strings.ToLower(name), "ivo://"):
		u, err := url.Parse(name)
		if err != nil {
			return nil, nil, fmt.Errorf("name %q: %v", name, err)
		}
		tmpl.URIs = []*url.URL{u}
	default:
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), nil
}

func runTLSKeygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("comet tls-keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name, prefix := "", ""
	fs.StringVar(&name, "name", "", "host name, IP address or ivo:// IVOID for the certificate (CN and SAN)")
	fs.StringVar(&prefix, "o", "", "write PREFIX.crt and PREFIX.key")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: comet tls-keygen --name NAME -o PREFIX")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 || name == "" || prefix == "" {
		fmt.Fprintln(stderr, "comet tls-keygen: want --name NAME -o PREFIX and no other arguments")
		return exitUsage
	}
	if strings.ContainsAny(name, "\x00\n\r") {
		fmt.Fprintln(stderr, "comet tls-keygen: --name contains a control character")
		return exitUsage
	}
	now := time.Now()
	certPEM, keyPEM, err := tlsSelfSigned(name, now.Add(-time.Hour), now.Add(tlsKeygenValidity))
	if err != nil {
		fmt.Fprintf(stderr, "comet tls-keygen: %v\n", err)
		return exitFail
	}
	certFile, keyFile := prefix+".crt", prefix+".key"
	for _, f := range []string{certFile, keyFile} {
		if _, err := os.Lstat(f); err == nil {
			fmt.Fprintf(stderr, "comet tls-keygen: %s exists; not overwriting\n", f)
			return exitFail
		}
	}
	if err := tlsWriteNew(keyFile, keyPEM, 0o600); err != nil {
		fmt.Fprintf(stderr, "comet tls-keygen: %v\n", err)
		return exitFail
	}
	if err := tlsWriteNew(certFile, certPEM, 0o644); err != nil {
		os.Remove(keyFile)
		fmt.Fprintf(stderr, "comet tls-keygen: %v\n", err)
		return exitFail
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		fmt.Fprintf(stderr, "comet tls-keygen: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s\n", tlsPin(cert))
	fmt.Fprintf(stderr, "wrote %s and %s\n", certFile, keyFile)
	return exitOK
}

// tlsWriteNew creates path (which must not exist) with data and mode.
func tlsWriteNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

func runPin(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, "Usage: comet pin FILE")
		return exitUsage
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "comet pin: %v\n", err)
		return exitFail
	}
	certs, err := tlsParsePEMCertificates(data)
	if err != nil {
		fmt.Fprintf(stderr, "comet pin: %s: %v\n", args[0], err)
		return exitFail
	}
	if len(certs) == 0 {
		fmt.Fprintf(stderr, "comet pin: %s: no PEM certificate\n", args[0])
		return exitFail
	}
	fmt.Fprintln(stdout, tlsPin(certs[0]))
	return exitOK
}
