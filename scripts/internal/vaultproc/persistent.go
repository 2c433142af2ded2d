package vaultproc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/vault/api"
)

// Storage is the storage backend of a Persistent server.
type Storage string

const (
	StorageFile Storage = "file" // the default
	StorageRaft Storage = "raft" // integrated storage, one node
)

// Persistent is a Vault whose storage, in Dir/data, outlives its server
// processes: start, kill and start it again on the same data.
type Persistent struct {
	cfg       Config
	UnsealKey string
	RootToken string
}

// InitPersistent starts a server on new storage in cfg.Dir, initializes it
// with a single unseal key and leaves it running, unsealed and active.
func InitPersistent(cfg Config) (*Persistent, *Server, error) {
	if cfg.Storage == "" {
		cfg.Storage = StorageFile
	}
	p := &Persistent{cfg: cfg}
	s, err := p.Start()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	init, err := s.Client("").Sys().InitWithContext(ctx, &api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		s.Kill()
		return nil, nil, fmt.Errorf("init: %w", err)
	}
	p.UnsealKey, p.RootToken = init.Keys[0], init.RootToken
	s.Token = p.RootToken
	if err := p.Unseal(s); err != nil {
		s.Kill()
		return nil, nil, err
	}
	return p, s, nil
}

// Start starts a server process on p's storage, on a new free port, and
// waits until it answers; an initialized storage comes up sealed.
func (p *Persistent) Start() (*Server, error) {
	return retryPort(p.startOnce)
}

func (p *Persistent) startOnce() (*Server, error) {
	s, addr, err := newServer(p.cfg)
	if err != nil {
		return nil, err
	}
	s.Token = p.RootToken
	data := filepath.Join(p.cfg.Dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	var storage, cluster string
	switch p.cfg.Storage {
	case StorageFile, "":
		storage = fmt.Sprintf("storage \"file\" {\n  path = %q\n}\n", data)
	case StorageRaft:
		// The cluster listener takes the port after the API port (FreePort
		// checked that it was free).
		var port int
		if _, err := fmt.Sscanf(addr, "127.0.0.1:%d", &port); err != nil {
			return nil, err
		}
		cluster = fmt.Sprintf("127.0.0.1:%d", port+1)
		storage = fmt.Sprintf("storage \"raft\" {\n  path    = %q\n  node_id = \"node1\"\n}\ncluster_addr = %q\n", data, "https://"+cluster)
	default:
		return nil, fmt.Errorf("vaultproc: unknown storage %q", p.cfg.Storage)
	}
	listener := fmt.Sprintf("listener \"tcp\" {\n  address     = %q\n  tls_disable = true\n", addr)
	if cluster != "" {
		listener += fmt.Sprintf("  cluster_address = %q\n", cluster)
	}
	listener += "}\n"
	hcl := storage + listener + fmt.Sprintf("api_addr      = %q\ndisable_mlock = true\nlog_level     = %q\n", s.Addr, p.cfg.logLevel())
	if p.cfg.PluginDir != "" {
		hcl += fmt.Sprintf("plugin_directory = %q\n", p.cfg.PluginDir)
	}
	path := filepath.Join(p.cfg.Dir, "vault.hcl")
	if err := os.WriteFile(path, []byte(hcl+p.cfg.HCL), 0o600); err != nil {
		return nil, err
	}
	appendLog(s.LogPath, fmt.Sprintf("\n===== starting Vault on %s at %s =====\n", addr, time.Now().Format(time.RFC3339Nano)))
	if err := s.start("server", "-config="+path); err != nil {
		return nil, err
	}
	if err := s.WaitReady(p.cfg.readyTimeout(), Answering); err != nil {
		s.Kill()
		return nil, err
	}
	return s, nil
}

// Unseal unseals s with p's key and waits until it is the active node.
func (p *Persistent) Unseal(s *Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := s.Client("").Sys().UnsealWithContext(ctx, p.UnsealKey)
	if err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if st.Sealed {
		return errors.New("still sealed after the unseal key")
	}
	return s.WaitReady(p.cfg.readyTimeout(), Active)
}

// appendLog adds a marker line to a log file.
func appendLog(path, msg string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	_, _ = f.WriteString(msg)
	_ = f.Close()
}
