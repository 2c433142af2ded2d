package vaultproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModulePath is the module whose checkout holds scripts/vault.sh.
const ModulePath = "github.com/zoho-vault/vault-plugin-secrets-zoho"

// ErrNotFound is returned by Find when no vault binary exists yet.
var ErrNotFound = errors.New("no Vault binary")

// RepoRoot walks up from the working directory to the go.mod of ModulePath.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module "+ModulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above the working directory", ModulePath)
		}
		dir = parent
	}
}

// PinnedVersion is the github.com/hashicorp/vault version required by
// scripts/vault/go.mod, the module `make vault` builds Vault from (read the
// way scripts/vault.sh reads it).
func PinnedVersion(root string) (string, error) {
	path := filepath.Join(root, "scripts", "vault", "go.mod")
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 3 && fields[0] == "require" && fields[1] == "github.com/hashicorp/vault":
			return fields[2], nil
		case len(fields) >= 2 && fields[0] == "github.com/hashicorp/vault" && strings.HasPrefix(fields[1], "v"):
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no pinned github.com/hashicorp/vault version in %s", path)
}

// CachedPath is where scripts/vault.sh keeps its build of version.
func CachedPath(root, version string) string {
	return filepath.Join(root, ".cache", "vault-"+strings.TrimPrefix(version, "v"))
}

// Find returns the absolute path of the vault binary by the rule of
// scripts/vault.sh, without building one: $VAULT_BIN if set (it must be
// executable), else vault on PATH, else the cached build of the version
// pinned in scripts/vault/go.mod. The error wraps ErrNotFound when none
// exists.
func Find(root string) (string, error) {
	if p := os.Getenv("VAULT_BIN"); p != "" {
		abs, err := executable(p)
		if err != nil {
			return "", fmt.Errorf("VAULT_BIN: %w", err)
		}
		return abs, nil
	}
	if p, err := exec.LookPath("vault"); err == nil {
		return filepath.Abs(p)
	}
	version, err := PinnedVersion(root)
	if err != nil {
		return "", err
	}
	cached := CachedPath(root, version)
	if abs, err := executable(cached); err == nil {
		return abs, nil
	}
	return "", fmt.Errorf("%w: set VAULT_BIN, put vault on PATH, or run `make vault` to build Vault %s into %s",
		ErrNotFound, version, cached)
}

// FindOrBuild is Find, and when no binary exists yet, runs scripts/vault.sh,
// which builds the pinned version into .cache/ (minutes; its progress goes
// to progress, which may be nil).
func FindOrBuild(ctx context.Context, root string, progress io.Writer) (string, error) {
	bin, err := Find(root)
	if !errors.Is(err, ErrNotFound) {
		return bin, err
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "vault.sh"))
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if progress != nil {
		cmd.Stderr = io.MultiWriter(&stderr, progress)
	}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: scripts/vault.sh failed (%v): %s; set VAULT_BIN or run `make vault`",
			ErrNotFound, err, lastLines(stderr.String(), 20))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	abs, err := executable(strings.TrimSpace(lines[len(lines)-1]))
	if err != nil {
		return "", fmt.Errorf("scripts/vault.sh printed no usable binary: %w", err)
	}
	return abs, nil
}

// executable returns the absolute path of p if it is an executable file.
func executable(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", abs)
	}
	return abs, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
