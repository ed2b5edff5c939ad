package server

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pennant/pennant/internal/loadtester/shellwords"
)

// Engine runs one kind of command line natively, in the load tester's process: it executes
// nothing, so it needs no -allow-exec.
type Engine interface {
	// Handles tells whether the command line is one the engine runs (its program is the engine's).
	Handles(command string) bool
	// Prepare reads the command line of a canary's task and returns how to run it; an error is a
	// mistake in the line. The run's text is its report (logged, and returned with returnCmdOutput).
	Prepare(canary types.NamespacedName, command string) (func(ctx context.Context) (string, error), error)
}

// grpcHealthCheck is a gRPC health check (grpc.health.v1.Health/Check), as grpc_health_probe makes it.
type grpcHealthCheck struct {
	addr           string
	service        string
	useTLS         bool
	tlsNoVerify    bool
	tlsServerName  string
	userAgent      string
	headers        [][2]string
	connectTimeout time.Duration
	rpcTimeout     time.Duration
}

// GRPCHealthProbe runs grpc_health_probe command lines natively (Flagger's e2e tests and docs
// call it from bash tasks: grpc_health_probe -connect-timeout=1s -addr=podinfo-canary:9999).
type GRPCHealthProbe struct{}

// Handles tells whether the line's program is grpc_health_probe.
func (GRPCHealthProbe) Handles(command string) bool {
	cl, err := shellwords.Split(command)
	return err == nil && len(cl.Words) > 0 && path.Base(cl.Words[0]) == "grpc_health_probe"
}

// Prepare reads grpc_health_probe's flags; the ones reading files (client certificates, CA
// bundles) or needing a platform identity (ALTS, SPIFFE) are refused.
func (GRPCHealthProbe) Prepare(_ types.NamespacedName, command string) (func(ctx context.Context) (string, error), error) {
	cl, err := shellwords.Split(command)
	if err != nil {
		return nil, err
	}
	if len(cl.Syntax) > 0 {
		return nil, fmt.Errorf("grpc_health_probe runs built in, without a shell: %s cannot be used", strings.Join(cl.SyntaxNames(), " "))
	}
	c := grpcHealthCheck{userAgent: "grpc_health_probe"}
	fs := flag.NewFlagSet("grpc_health_probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.addr, "addr", "", "")
	fs.StringVar(&c.service, "service", "", "")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", time.Second, "")
	fs.DurationVar(&c.rpcTimeout, "rpc-timeout", time.Second, "")
	fs.BoolVar(&c.useTLS, "tls", false, "")
	fs.BoolVar(&c.tlsNoVerify, "tls-no-verify", false, "")
	fs.StringVar(&c.tlsServerName, "tls-server-name", "", "")
	fs.StringVar(&c.userAgent, "user-agent", c.userAgent, "")
	fs.Func("rpc-header", "", func(v string) error {
		k, val, ok := strings.Cut(v, ":")
		if !ok {
			return fmt.Errorf("rpc-header %q is not name: value", v)
		}
		c.headers = append(c.headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(val)})
		return nil
	})
	fs.Bool("v", false, "")
	fs.Bool("gzip", false, "")
	if err := fs.Parse(cl.Words[1:]); err != nil {
		return nil, fmt.Errorf("grpc_health_probe: %w (the built-in check takes -addr, -service, -connect-timeout, -rpc-timeout, -tls, -tls-no-verify, -tls-server-name, -user-agent, -rpc-header)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("grpc_health_probe: unexpected arguments %q", fs.Args())
	}
	if c.addr == "" {
		return nil, errors.New("grpc_health_probe: -addr is required")
	}
	return c.run, nil
}

// grpcCheckFromMetadata is the check of a grpc task: metadata address (host:port, required),
// service (default: the server's overall health), tls and tlsNoVerify ("true"), tlsServerName.
func grpcCheckFromMetadata(md map[string]string, timeout time.Duration) (func(ctx context.Context) (string, error), error) {
	c := grpcHealthCheck{
		addr:           md["address"],
		service:        md["service"],
		tlsServerName:  md["tlsServerName"],
		userAgent:      "pennant-loadtester",
		connectTimeout: timeout,
		rpcTimeout:     timeout,
	}
	if c.addr == "" {
		return nil, errors.New("address not found in metadata: a grpc task checks the gRPC health service at metadata address (host:port)")
	}
	for key, dst := range map[string]*bool{"tls": &c.useTLS, "tlsNoVerify": &c.tlsNoVerify} {
		if v, ok := md[key]; ok {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("metadata %s %q is not a boolean", key, v)
			}
			*dst = b
		}
	}
	return c.run, nil
}

// run checks the service's health: nil when it is SERVING. The messages are grpc_health_probe's.
func (c grpcHealthCheck) run(ctx context.Context) (string, error) {
	creds := insecure.NewCredentials()
	if c.useTLS {
		creds = credentials.NewTLS(&tls.Config{
			ServerName:         c.tlsServerName,
			InsecureSkipVerify: c.tlsNoVerify, //nolint:gosec // the user's explicit -tls-no-verify
		})
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds), grpc.WithUserAgent(c.userAgent))
	if err != nil {
		return "", fmt.Errorf("error: failed to connect service at %q: %w", c.addr, err)
	}
	defer conn.Close()
	if err := waitReady(ctx, conn, c.connectTimeout); err != nil {
		return "", fmt.Errorf("timeout: failed to connect service %q within %v", c.addr, c.connectTimeout)
	}
	rpcCtx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	for _, h := range c.headers {
		rpcCtx = metadata.AppendToOutgoingContext(rpcCtx, h[0], h[1])
	}
	resp, err := healthpb.NewHealthClient(conn).Check(rpcCtx, &healthpb.HealthCheckRequest{Service: c.service})
	if err != nil {
		return "", fmt.Errorf("error: health rpc failed: %w", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "", fmt.Errorf("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return fmt.Sprintf("status: %s", resp.GetStatus().String()), nil
}

// waitReady connects and waits until the connection is ready, at most timeout.
func waitReady(ctx context.Context, conn *grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return ctx.Err()
		}
	}
}
