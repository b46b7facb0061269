package lab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is the lab's test certificate authority. Its root is trusted only by
// whoever is given Pool() or the PEM (mxray's --tls-ca, Postfix's
// smtp_tls_CAfile): nothing on the system trusts it.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte // the root certificate, PEM encoded
}

// NewCA makes a CA valid from an hour before now for ten years.
func NewCA(now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mxray lab CA", Organization: []string{"mxray lab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("lab: CA: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key, PEM: pemBlock("CERTIFICATE", der)}, nil
}

// Pool returns a pool holding only the lab root.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertOptions shape an issued certificate. The zero value gives a valid
// certificate for a year from now.
type CertOptions struct {
	Now time.Time // the reference time; required
	// NotBefore and NotAfter override the validity (for an expired
	// certificate, set NotAfter in the past).
	NotBefore, NotAfter time.Time
	// SelfSigned signs the leaf with its own key instead of the CA's.
	SelfSigned bool
	// RSABits, when set, makes an RSA key of that size instead of P-256
	// (for key-size findings). Not implemented below 1024.
	RSABits int
}

// Leaf is an issued certificate with its key.
type Leaf struct {
	Cert    *x509.Certificate
	TLS     tls.Certificate // leaf plus, unless self-signed, the CA
	CertPEM []byte          // leaf then CA, as servers want the chain
	KeyPEM  []byte
}

// Issue makes a server certificate for names (DNS names or IP addresses;
// the first is also the common name). A "wrong name" certificate is simply
// one issued for other names.
func (ca *CA) Issue(names []string, o CertOptions) (*Leaf, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("lab: Issue needs at least one name")
	}
	if o.Now.IsZero() {
		return nil, fmt.Errorf("lab: CertOptions.Now is required")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = o.Now.Add(-time.Hour)
	}
	if na.IsZero() {
		na = o.Now.AddDate(1, 0, 0)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"mxray lab"}},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	parent, signer := ca.Cert, ca.Key
	if o.SelfSigned {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("lab: issue %v: %w", names, err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	l := &Leaf{Cert: cert, KeyPEM: pemBlock("PRIVATE KEY", kder)}
	l.CertPEM = pemBlock("CERTIFICATE", der)
	l.TLS = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
	if !o.SelfSigned {
		l.CertPEM = append(l.CertPEM, ca.PEM...)
		l.TLS.Certificate = append(l.TLS.Certificate, ca.Cert.Raw)
	}
	return l, nil
}

// WriteFiles writes NAME.crt (chain) and NAME.key (mode 0600) into dir.
func (l *Leaf) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, name+".crt")
	keyFile = filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, l.CertPEM, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, l.KeyPEM, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
