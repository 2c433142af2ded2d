package vaultproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child process in a process group of its own, with its output
// appended to a log file: signalling the group reaches whatever it started
// (Vault's plugin processes).
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	err error // exit status, once done
}

// StartProcess runs bin with args and env, appending its output to logPath.
// The process dies with its parent (Pdeathsig): a test binary killed on
// -timeout takes its servers with it.
func StartProcess(bin string, args, env []string, logPath string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logf.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// PID is the process's id, which is also its process group's.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and its exit status.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the process alone.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// SignalGroup sends sig to the process group.
func (p *Process) SignalGroup(sig syscall.Signal) error {
	err := syscall.Kill(-p.PID(), sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil // nothing left in the group
	}
	return err
}

// Wait waits up to timeout for the process to exit and reports whether it did.
func (p *Process) Wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// Stop sends SIGTERM to the process group and, if the process has not
// exited after grace, SIGKILL; either way the group ends with a SIGKILL for
// whatever is left (plugin processes a clean shutdown missed).
func (p *Process) Stop(grace time.Duration) {
	_ = p.SignalGroup(syscall.SIGTERM)
	p.Wait(grace)
	p.Kill()
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Process) Kill() {
	_ = p.SignalGroup(syscall.SIGKILL)
	p.Wait(10 * time.Second)
}

// Env is this process's environment for a child that must talk to one Vault
// only: nothing that would point it elsewhere (VAULT_*) or through a proxy,
// HOME set to home, TMPDIR dropped, then extra.
func Env(home string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k := strings.ToUpper(strings.SplitN(kv, "=", 2)[0])
		if strings.HasPrefix(k, "VAULT_") || strings.HasSuffix(k, "_PROXY") || k == "HOME" || k == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	return append(env, extra...)
}
