package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/pennant/pennant/internal/loadtester/server"
	"github.com/pennant/pennant/internal/telemetry"
)

// shutdownGrace bounds how long in-flight requests may finish after SIGTERM before tasks are killed.
const shutdownGrace = 10 * time.Second

// run serves the load tester on -port until ctx ends, then stops its tasks.
func run(ctx context.Context, o options, logOut io.Writer) error {
	log := telemetry.NewLogger(o.logLevel, o.zapEncoding, logOut)
	if o.zapReplaceGlobals {
		zap.ReplaceGlobals(log)
	}
	defer func() { _ = log.Sync() }()
	srv, err := newServer(ctx, o, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", ":"+o.port)
	if err != nil {
		return err
	}
	log.Sugar().Infof("Starting load tester v%s API on port %s", version, o.port)
	return serve(ctx, ln, srv, log)
}

// newServer wires the load tester's parts from the flags.
func newServer(ctx context.Context, o options, log *zap.Logger) (*server.Server, error) {
	re, err := o.namespaceRe()
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gates, authorizer, err := gateBackend(ctx, o, log)
	if err != nil {
		return nil, err
	}
	engines, err := builtinEngines(reg)
	if err != nil {
		return nil, err
	}
	if !o.allowExec {
		log.Info("running commands is disabled: only hey load tests and grpc_health_probe checks run (see -allow-exec)")
	}
	return server.New(server.Config{
		Log:             log,
		Registry:        reg,
		Gates:           gates,
		GateAuthorizer:  authorizer,
		NamespaceRegexp: re,
		Exec: server.ExecPolicy{
			Allow:      o.allowExec,
			Prefixes:   server.ParsePrefixes(o.execAllow),
			AllowShell: o.allowShell,
		},
		Engines:            engines,
		Timeout:            o.timeout,
		MaxOutputBytes:     o.maxOutputBytes,
		MaxConcurrentTasks: o.maxConcurrentTasks,
	})
}

// serve answers on ln until ctx ends; then in-flight requests get shutdownGrace to finish.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *zap.Logger) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Sugar().Errorf("HTTP server graceful shutdown failed %v", err)
	} else {
		log.Info("HTTP server stopped")
	}
	<-done
	return nil
}
