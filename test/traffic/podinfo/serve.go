package podinfo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// Listen opens a TCP listener on every address, or none: on an error it closes those already open.
func Listen(addrs []string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, open := range ls {
				_ = open.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// ListenFDsEnv names the environment variable by which a supervisor hands a process its listening
// sockets, already bound, as file descriptors 3, 4, ... in the order of its addresses (systemd's
// socket activation convention).
const ListenFDsEnv = "LISTEN_FDS"

// Inherited returns the n listening sockets a supervisor passed as file descriptors 3 to 3+n-1.
func Inherited(n int) ([]net.Listener, error) {
	var ls []net.Listener
	for i := range n {
		f := os.NewFile(uintptr(3+i), fmt.Sprintf("listener-%d", i))
		l, err := net.FileListener(f)
		_ = f.Close() // FileListener holds its own duplicate
		if err != nil {
			for _, open := range ls {
				_ = open.Close()
			}
			return nil, fmt.Errorf("inherited listener %d: %w", i, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// Serve answers on every listener until ctx ends, then shuts down like a well-behaved pod: for
// cfg.ShutdownDelay it keeps answering with /readyz 503 (proxies route to a terminating pod until
// they see its endpoint go), then it stops accepting and waits up to cfg.ShutdownTimeout for
// requests in flight. logf (may be nil) gets one line per shutdown step.
func Serve(ctx context.Context, cfg Config, listeners []net.Listener, logf func(format string, args ...any)) error {
	if len(listeners) == 0 {
		return errors.New("podinfo: nothing to listen on")
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	draining := make(chan struct{})
	cfg.Draining = draining
	srv := &http.Server{Handler: Handler(cfg), ReadHeaderTimeout: 10 * time.Second}

	failed := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("serving on %s: %w", l.Addr(), err)
			}
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
		close(draining)
		logf("shutting down: serving %v more with /readyz 503", cfg.ShutdownDelay)
		select {
		case <-time.After(cfg.ShutdownDelay):
		case serveErr = <-failed:
		}
	case serveErr = <-failed:
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logf("requests still in flight after %v: closing their connections", cfg.ShutdownTimeout)
		_ = srv.Close()
	}
	return serveErr
}
