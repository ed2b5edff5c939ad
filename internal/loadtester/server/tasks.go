package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/pennant/pennant/internal/webhooks"
)

// Task types of the metadata "type" (Flagger's names).
const (
	TypeCmd      = "cmd"
	TypeBash     = "bash"
	TypeHelm     = "helm"
	TypeHelmv3   = "helmv3"
	TypeKubectl  = "kubectl"
	TypeGRPC     = "grpc"
	TypeConcord  = "concord"
	TypeNGrinder = "ngrinder"
)

// task is one command to carry out for a canary.
type task struct {
	typ     string
	canary  string
	target  types.NamespacedName
	command string
	// run does the work: a built-in engine's or a process's. Its text is the output or report.
	run          func(ctx context.Context) (output []byte, err error)
	logOutput    bool
	returnOutput bool
	timeout      time.Duration
}

// newTask handles task submission on /: cmd tasks run in the background (202, deduplicated per
// canary and command, as Flagger's runner); the other types answer when done (200, or 500 with
// the error and the output).
func (s *Server) newTask(w http.ResponseWriter, r *http.Request) {
	p, ok := s.payload(w, r)
	if !ok {
		return
	}
	t, rf := s.plan(p)
	if rf != nil {
		s.metrics.refused(typeOf(p.Metadata), rf.status)
		taskLog(s.log, canaryKey(p)).Warnf("task refused: %s", rf.msg)
		http.Error(w, rf.msg, rf.status)
		return
	}
	if t.typ == TypeCmd {
		status, msg := s.startBackground(t)
		if status != http.StatusAccepted {
			http.Error(w, msg, status)
			return
		}
		w.WriteHeader(status)
		return
	}
	s.runBlocking(w, r, t)
}

// typeOf is the task type of the metadata: Flagger's default is cmd.
func typeOf(md map[string]string) string {
	if typ := md["type"]; typ != "" {
		return typ
	}
	return TypeCmd
}

// plan reads the task of a payload and decides how it runs, or why it does not.
func (s *Server) plan(p webhooks.Payload) (task, *refusal) {
	md := p.Metadata
	if len(md) == 0 {
		return task{}, refuse(http.StatusBadRequest, "metadata not found in payload")
	}
	t := task{typ: typeOf(md), canary: canaryKey(p), target: types.NamespacedName{Namespace: p.Namespace, Name: p.Name}, command: md["cmd"], timeout: s.cfg.Timeout}
	var err error
	if t.logOutput, err = optionalBool(md, "logCmdOutput"); err != nil {
		return t, refuse(http.StatusBadRequest, "%v", err)
	}
	if t.returnOutput, err = optionalBool(md, "returnCmdOutput"); err != nil {
		return t, refuse(http.StatusBadRequest, "%v", err)
	}
	if v, ok := md["timeout"]; ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return t, refuse(http.StatusBadRequest, "metadata timeout %q is not a positive duration such as 30s", v)
		}
		t.timeout = min(d, s.cfg.Timeout)
	}
	switch t.typ {
	case TypeCmd, TypeBash:
		shell := map[string]string{TypeCmd: "sh", TypeBash: "bash"}[t.typ]
		return s.planCommand(t, "", shell)
	case TypeHelm, TypeHelmv3:
		return s.planCommand(t, "helm", "")
	case TypeKubectl:
		return s.planCommand(t, "kubectl", "")
	case TypeGRPC:
		check, err := grpcCheckFromMetadata(md, t.timeout)
		if err != nil {
			return t, refuse(http.StatusBadRequest, "%v", err)
		}
		t.command = "grpc health check " + md["address"] + " " + md["service"]
		t.run = builtin(check)
		return t, nil
	case TypeConcord, TypeNGrinder:
		return t, refuse(http.StatusBadRequest, "task type %s is not supported by Pennant's load tester", t.typ)
	default:
		return t, refuse(http.StatusBadRequest, "unknown task type %s", t.typ)
	}
}

// planCommand decides how a command line runs: in a built-in engine when one handles it, else as
// a process if the exec policy allows it.
func (s *Server) planCommand(t task, program, shell string) (task, *refusal) {
	if strings.TrimSpace(t.command) == "" {
		return t, refuse(http.StatusBadRequest, "cmd not found in metadata")
	}
	if program == "" {
		for _, e := range s.cfg.Engines {
			if !e.Handles(t.command) {
				continue
			}
			run, err := e.Prepare(t.target, t.command)
			if err != nil {
				return t, refuse(http.StatusBadRequest, "cannot run %q: %v", t.command, err)
			}
			t.run = builtin(run)
			return t, nil
		}
	}
	argv, rf := s.cfg.Exec.argv(program, t.command, shell)
	if rf != nil {
		return t, rf
	}
	if program != "" {
		t.command = program + " " + t.command
	}
	maxOutput := s.cfg.MaxOutputBytes
	t.run = func(ctx context.Context) ([]byte, error) {
		res := runProcess(ctx, argv, maxOutput)
		return res.output.Bytes(), res.err
	}
	return t, nil
}

func builtin(run func(ctx context.Context) (string, error)) func(ctx context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		out, err := run(ctx)
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w: %v", contextFailure(ctx), err)
		}
		return []byte(out), err
	}
}

func optionalBool(md map[string]string, key string) (bool, error) {
	v, ok := md[key]
	if !ok || v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("metadata %s %q is not a boolean", key, v)
	}
	return b, nil
}

// acquire takes a task slot and registers the task with Close; when all slots are taken or the
// server is closing it returns the answer to give instead.
func (s *Server) acquire() (int, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acquireLocked()
}

func (s *Server) acquireLocked() (int, string) {
	if s.closed {
		return http.StatusServiceUnavailable, "the load tester is shutting down"
	}
	select {
	case s.slots <- struct{}{}:
		s.tasks.Add(1)
		return 0, ""
	default:
		return http.StatusTooManyRequests, fmt.Sprintf("too many tasks running (-max-concurrent-tasks=%d): try again later", cap(s.slots))
	}
}

func (s *Server) release() {
	<-s.slots
	s.tasks.Done()
}

// taskContext bounds a task by its timeout and by the server's lifetime, and by parent (the
// request of a blocking task: a caller that gave up does not leave its task running).
func (s *Server) taskContext(parent context.Context, t task) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	stop := context.AfterFunc(s.ctx, func() { cancel(fmt.Errorf("the load tester is shutting down")) })
	tctx, tcancel := context.WithTimeoutCause(ctx, t.timeout, fmt.Errorf("%w after %v", errTaskTimeout, t.timeout))
	return tctx, func() {
		tcancel()
		stop()
		cancel(context.Canceled)
	}
}

// startBackground runs a cmd task in the background unless the same command already runs for the
// canary (Flagger's runner skips it then).
func (s *Server) startBackground(t task) (int, string) {
	log := taskLog(s.log, t.canary)
	key := dedupKey(t)
	s.mu.Lock()
	if s.running[key] {
		s.mu.Unlock()
		s.metrics.outcome(t.typ, "skipped")
		log.Infof("command skipped %s is already running", t.command)
		return http.StatusAccepted, ""
	}
	if status, msg := s.acquireLocked(); status != 0 {
		s.mu.Unlock()
		s.metrics.refused(t.typ, status)
		return status, msg
	}
	s.running[key] = true
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.running, key)
			s.mu.Unlock()
			s.release()
		}()
		ctx, cancel := s.taskContext(context.Background(), t)
		defer cancel()
		_, _ = s.execute(ctx, t)
	}()
	return http.StatusAccepted, ""
}

// runBlocking runs a task while the caller waits: 200 (with the output when returnCmdOutput), or
// 500 with the error and the output.
func (s *Server) runBlocking(w http.ResponseWriter, r *http.Request, t task) {
	if status, msg := s.acquire(); status != 0 {
		s.metrics.refused(t.typ, status)
		http.Error(w, msg, status)
		return
	}
	defer s.release()
	ctx, cancel := s.taskContext(r.Context(), t)
	defer cancel()
	out, err := s.execute(ctx, t)
	if err != nil {
		msg := fmt.Sprintf("command %s failed: %v", t.command, err)
		if len(out) > 0 {
			msg += "\n" + string(out)
		}
		http.Error(w, msg, http.StatusInternalServerError)
		return
	}
	if t.returnOutput {
		_, _ = w.Write(out)
	}
}

// execute runs a task and logs it as Flagger's load tester does.
func (s *Server) execute(ctx context.Context, t task) ([]byte, error) {
	log := taskLog(s.log, t.canary)
	log.Infof("command starting %s", t.command)
	s.metrics.running.Inc()
	start := time.Now()
	out, err := t.run(ctx)
	s.metrics.running.Dec()
	s.metrics.duration.WithLabelValues(t.typ).Observe(time.Since(start).Seconds())
	if err != nil {
		s.metrics.outcome(t.typ, "failed")
		log.Errorf("command failed %s %v %s", t.command, err, out)
		return out, err
	}
	s.metrics.outcome(t.typ, "succeeded")
	if t.logOutput || t.typ != TypeCmd {
		log.Info(string(out))
	}
	log.Infof("command finished %s", t.command)
	return out, nil
}

// dedupKey identifies a background task: the canary and its command, as Flagger's hash.
func dedupKey(t task) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(t.canary + "\x00" + t.command))
	return hex.EncodeToString(h.Sum(nil))
}
