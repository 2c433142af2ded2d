package vaultproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// Config describes a Vault server to start.
type Config struct {
	Bin       string // the vault binary (see Find)
	Dir       string // private directory for configuration, HOME, log and data; created if missing
	PluginDir string // plugin_directory; none when empty
	LogLevel  string // default "debug"
	HCL       string // more top-level configuration, e.g. "raw_storage_endpoint = true"

	// Storage is the storage of a Persistent server; StartDev ignores it.
	Storage Storage

	// ReadyTimeout bounds the wait for the server to answer; default 60 s.
	ReadyTimeout time.Duration
}

func (c Config) logLevel() string {
	if c.LogLevel == "" {
		return "debug"
	}
	return c.LogLevel
}

func (c Config) readyTimeout() time.Duration {
	if c.ReadyTimeout <= 0 {
		return 60 * time.Second
	}
	return c.ReadyTimeout
}

// Server is one Vault server process on loopback.
type Server struct {
	Bin     string
	Addr    string // http://127.0.0.1:<port>
	Dir     string
	Home    string // HOME of the server and of CLI runs against it
	LogPath string
	Token   string // root token

	proc *Process
	tmp  string // TMPDIR of the server and its plugins

	mu     sync.Mutex
	killed bool
}

// StartDev starts `vault server -dev` with root token "root" and waits until
// it is unsealed and active. A port taken by someone else between picking
// and binding it is picked again.
func StartDev(cfg Config) (*Server, error) {
	return retryPort(func() (*Server, error) { return startDevOnce(cfg) })
}

func startDevOnce(cfg Config) (*Server, error) {
	s, addr, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	s.Token = "root"
	hcl := "disable_mlock = true\n"
	if cfg.PluginDir != "" {
		hcl = fmt.Sprintf("plugin_directory = %q\n", cfg.PluginDir) + hcl
	}
	path := filepath.Join(cfg.Dir, "dev.hcl")
	if err := os.WriteFile(path, []byte(hcl+cfg.HCL), 0o600); err != nil {
		return nil, err
	}
	if err := s.start("server", "-dev", "-dev-root-token-id=root", "-dev-listen-address="+addr,
		"-dev-no-store-token", "-config="+path, "-log-level="+cfg.logLevel()); err != nil {
		return nil, err
	}
	if err := s.WaitReady(cfg.readyTimeout(), Active); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// retryPort tries start up to three times while Vault could not bind its port.
func retryPort(start func() (*Server, error)) (*Server, error) {
	var err error
	for i := 0; i < 3; i++ {
		var s *Server
		if s, err = start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return s, err
		}
	}
	return nil, err
}

// newServer prepares a server's directories and picks its address.
func newServer(cfg Config) (*Server, string, error) {
	if cfg.Bin == "" || cfg.Dir == "" {
		return nil, "", errors.New("vaultproc: Config.Bin and Config.Dir are required")
	}
	port, err := FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{
		Bin:     cfg.Bin,
		Addr:    "http://" + addr,
		Dir:     cfg.Dir,
		Home:    filepath.Join(cfg.Dir, "home"),
		LogPath: filepath.Join(cfg.Dir, "vault.log"),
	}
	if err := os.MkdirAll(s.Home, 0o700); err != nil {
		return nil, "", err
	}
	return s, addr, nil
}

// start runs the server process.
func (s *Server) start(args ...string) error {
	// Plugin processes keep their sockets under TMPDIR; a short private one
	// keeps socket paths short and leaves nothing behind in /tmp.
	tmp, err := os.MkdirTemp("", "zv-")
	if err != nil {
		return err
	}
	p, err := StartProcess(s.Bin, args, Env(s.Home, "TMPDIR="+tmp), s.LogPath)
	if err != nil {
		os.RemoveAll(tmp)
		return err
	}
	s.proc, s.tmp = p, tmp
	return nil
}

// PID is the server's process id (and process group id).
func (s *Server) PID() int { return s.proc.PID() }

// Exited reports whether the server process has exited, and how.
func (s *Server) Exited() (bool, error) { return s.proc.Exited() }

// Active accepts an unsealed active node.
func Active(h *api.HealthResponse) bool { return h.Initialized && !h.Sealed && !h.Standby }

// Answering accepts any health answer: the server is up, maybe sealed or
// uninitialized.
func Answering(*api.HealthResponse) bool { return true }

// WaitReady polls sys/health until ok accepts the answer, failing early with
// the log's tail if the process exits.
func (s *Server) WaitReady(timeout time.Duration, ok func(*api.HealthResponse) bool) error {
	c := s.Client("")
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if gone, err := s.Exited(); gone {
			return fmt.Errorf("vault exited while starting (%v)\n--- vault log ---\n%s", err, s.LogTail(80))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h, err := c.Sys().HealthWithContext(ctx)
		cancel()
		if err == nil && ok(h) {
			return nil
		}
		if err == nil {
			last = fmt.Errorf("health: %+v", *h)
		} else {
			last = err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("vault at %s not ready after %s: %v\n--- vault log ---\n%s", s.Addr, timeout, last, s.LogTail(80))
}

// Client is an API client for the server with token (none when empty; pass
// s.Token for root). Retries are off so that failures show as they are.
func (s *Server) Client(token string) *api.Client {
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	cfg.Timeout = 60 * time.Second
	c, err := api.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	c.ClearToken()
	if token != "" {
		c.SetToken(token)
	}
	return c
}

// Command is the vault CLI run against the server with token.
func (s *Server) Command(ctx context.Context, token string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.Env = Env(s.Home, "VAULT_ADDR="+s.Addr, "VAULT_TOKEN="+token)
	return cmd
}

// Plugin is a plugin binary in the server's plugin directory.
type Plugin struct {
	Name    string   // catalog name, e.g. "zoho"
	Command string   // file name in the plugin directory
	Version string   // the semantic version the binary reports
	SHA256  string   // hex sha256 of the binary
	Env     []string // KEY=VALUE pairs Vault sets in the plugin process's environment (`-env`)
}

// EnablePlugin registers the secrets plugin p by sha256 and version with the
// vault CLI, as an operator would, and mounts it at path.
func (s *Server) EnablePlugin(ctx context.Context, p Plugin, path string) error {
	if err := s.RegisterPlugin(ctx, p); err != nil {
		return err
	}
	return s.vault(ctx, "secrets", "enable", "-path="+path, "-plugin-version="+p.Version, p.Name)
}

// RegisterPlugin registers the secrets plugin p in the catalog by sha256 and
// version, with its environment. Registering the same name and version again
// replaces the entry, e.g. with another Env: the plugin's running processes
// keep theirs, and a reload of the plugin (sys/plugins/reload/backend) starts
// them again with the new entry.
func (s *Server) RegisterPlugin(ctx context.Context, p Plugin) error {
	args := []string{"plugin", "register", "-sha256=" + p.SHA256, "-version=" + p.Version, "-command=" + p.Command}
	for _, kv := range p.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("vaultproc: plugin %s: environment entry %q is not KEY=VALUE", p.Name, kv)
		}
		args = append(args, "-env="+kv)
	}
	return s.vault(ctx, append(args, "secret", p.Name)...)
}

// vault runs the vault CLI against the server with the root token.
func (s *Server) vault(ctx context.Context, args ...string) error {
	out, err := s.Command(ctx, s.Token, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Terminate sends SIGTERM to the server and waits up to timeout for it to
// exit; plugin processes its shutdown left behind end with the group. It
// returns the server's exit status, or an error if it had to be killed.
func (s *Server) Terminate(timeout time.Duration) error {
	if gone, _ := s.Exited(); gone {
		return errors.New("vault had already exited")
	}
	if err := s.proc.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if !s.proc.Wait(timeout) {
		s.Kill()
		return fmt.Errorf("vault did not exit within %s of SIGTERM", timeout)
	}
	s.Kill()
	_, err := s.Exited()
	return err
}

// Stop ends the server and its plugins: SIGTERM to the process group, then
// SIGKILL after 15 s or once the server has exited.
func (s *Server) Stop() {
	if s.markKilled() {
		s.proc.Stop(15 * time.Second)
		s.removeTmp()
	}
}

// Kill sends SIGKILL to the server and its plugins at once, as a crash
// would, and waits for the server to exit.
func (s *Server) Kill() {
	if s.markKilled() {
		s.proc.Kill()
		s.removeTmp()
	}
}

// markKilled reports whether this is the first Stop or Kill.
func (s *Server) markKilled() bool {
	if s == nil || s.proc == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.killed
	s.killed = true
	return first
}

func (s *Server) removeTmp() {
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
}

// LogSize is the current size of the server's log.
func (s *Server) LogSize() int64 {
	st, err := os.Stat(s.LogPath)
	if err != nil {
		return 0
	}
	return st.Size()
}

// LogSince is what the log gained after offset off (its last 400 lines).
func (s *Server) LogSince(off int64) string {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	if off > int64(len(data)) {
		off = 0
	}
	return lastLines(string(data[off:]), 400)
}

// LogTail is the last n lines of the server's log.
func (s *Server) LogTail(n int) string {
	data, err := os.ReadFile(s.LogPath)
	if err != nil {
		return err.Error()
	}
	return lastLines(string(data), n)
}
