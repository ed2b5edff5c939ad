package load

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// errorKind is why a request got no (complete) response: a small fixed set, so that it can be a metric
// label and a report line without one entry per error message.
type errorKind int

const (
	errTimeout errorKind = iota
	errRefused
	errReset
	errEOF
	errDNS
	errTLS
	errAborted
	errOther
	numErrorKinds
)

func (k errorKind) String() string {
	return [...]string{"timeout", "connection refused", "connection reset", "connection closed",
		"dns", "tls", "aborted", "other"}[k]
}

// classify sorts a request's error into a kind. aborted is true when the run had been stopped (its
// context cancelled), which is why the request ended.
func classify(err error, aborted bool) errorKind {
	var (
		netErr  net.Error
		dnsErr  *net.DNSError
		recErr  tls.RecordHeaderError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
	)
	switch {
	case aborted && errors.Is(err, context.Canceled):
		return errAborted
	case errors.As(err, &dnsErr):
		return errDNS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return errTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return errRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return errReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errEOF
	case errors.As(err, &recErr), errors.As(err, &certErr), errors.As(err, &unkAuth),
		strings.Contains(err.Error(), "tls: "):
		return errTLS
	}
	return errOther
}
