package vaultproc

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func writeExec(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPinnedVersion(t *testing.T) {
	for name, gomod := range map[string]string{
		"one line": "module x\n\ngo 1.25\n\nrequire github.com/hashicorp/vault v1.2.3\n",
		"block":    "module x\n\nrequire (\n\tgithub.com/hashicorp/vault v1.2.3\n\tgithub.com/hashicorp/vault/api v1.22.0 // indirect\n)\n",
		"first of": "module x\n\nrequire (\n\tgithub.com/hashicorp/vault/sdk v0.20.0\n\tgithub.com/hashicorp/vault v1.2.3 // comment\n)\n\nreplace github.com/hashicorp/vault v1.9.9 => ../vault\n",
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			path := filepath.Join(root, "scripts", "vault", "go.mod")
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(gomod), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := PinnedVersion(root)
			if err != nil || got != "v1.2.3" {
				t.Fatalf("PinnedVersion = %q, %v; want v1.2.3", got, err)
			}
			if want := filepath.Join(root, ".cache", "vault-1.2.3"); CachedPath(root, got) != want {
				t.Fatalf("CachedPath = %s; want %s", CachedPath(root, got), want)
			}
		})
	}
	root := t.TempDir()
	if _, err := PinnedVersion(root); err == nil {
		t.Fatal("PinnedVersion without scripts/vault/go.mod succeeded")
	}
}

// TestFindFollowsVaultSh checks Find against scripts/vault.sh itself, copied
// into a fake checkout: VAULT_BIN first (and only: a bad one is an error),
// then vault on PATH, then the cached build of the pinned version; with none
// of them vault.sh builds that version into the same path.
func TestFindFollowsVaultSh(t *testing.T) {
	realRoot, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile(filepath.Join(realRoot, "scripts", "vault.sh"))
	if err != nil {
		t.Fatal(err)
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	// The commands vault.sh runs, and no vault and no go.
	tools := t.TempDir()
	for _, name := range []string{"dirname", "awk", "head", "mkdir", "mktemp", "rm", "sleep"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}

	type setup struct{ vaultBin, onPath, cached bool }
	for _, tc := range []struct {
		name  string
		setup setup
		want  string // "env", "path", "cache", or "" for not found
		bad   bool   // VAULT_BIN names a file that is not executable
	}{
		{"VAULT_BIN before PATH and cache", setup{true, true, true}, "env", false},
		{"a bad VAULT_BIN is an error", setup{true, true, true}, "", true},
		{"PATH before cache", setup{false, true, true}, "path", false},
		{"cache of the pinned version", setup{false, false, true}, "cache", false},
		{"nothing: build", setup{false, false, false}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "scripts", "vault"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "scripts", "vault.sh"), script, 0o755); err != nil {
				t.Fatal(err)
			}
			gomod := "module x\n\ngo 1.25\n\nrequire github.com/hashicorp/vault v9.8.7\n"
			if err := os.WriteFile(filepath.Join(root, "scripts", "vault", "go.mod"), []byte(gomod), 0o644); err != nil {
				t.Fatal(err)
			}
			paths := map[string]string{
				"env":   filepath.Join(root, "elsewhere", "vault"),
				"path":  filepath.Join(root, "bin", "vault"),
				"cache": filepath.Join(root, ".cache", "vault-9.8.7"),
			}
			env := ""
			if tc.setup.vaultBin {
				env = writeExec(t, paths["env"])
				if tc.bad {
					if err := os.Chmod(env, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			if tc.setup.onPath {
				writeExec(t, paths["path"])
			}
			if tc.setup.cached {
				writeExec(t, paths["cache"])
			}
			pathEnv := tools + string(os.PathListSeparator) + filepath.Join(root, "bin")
			t.Setenv("VAULT_BIN", env)
			t.Setenv("PATH", pathEnv)

			got, err := Find(root)
			cmd := exec.Command(bash, filepath.Join(root, "scripts", "vault.sh"))
			cmd.Env = []string{"PATH=" + pathEnv, "VAULT_BIN=" + env}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			shErr := cmd.Run()
			sh := strings.TrimSpace(stdout.String())

			switch {
			case tc.want != "":
				if err != nil || got != paths[tc.want] {
					t.Fatalf("Find = %q, %v; want %s", got, err, paths[tc.want])
				}
				if shErr != nil || sh != got {
					t.Fatalf("vault.sh printed %q (%v, %s); Find found %s", sh, shErr, stderr.String(), got)
				}
			case tc.bad:
				if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "VAULT_BIN") {
					t.Fatalf("Find = %q, %v; want an error about VAULT_BIN", got, err)
				}
				if shErr == nil || !strings.Contains(stderr.String(), "VAULT_BIN") {
					t.Fatalf("vault.sh with a bad VAULT_BIN: %v, %q, %s", shErr, sh, stderr.String())
				}
			default:
				if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "make vault") || !strings.Contains(err.Error(), paths["cache"]) {
					t.Fatalf("Find = %q, %v; want ErrNotFound naming `make vault` and %s", got, err, paths["cache"])
				}
				// vault.sh builds the pinned version into the same path (and
				// fails here, without go on PATH).
				if shErr == nil || !strings.Contains(stderr.String(), "building Vault v9.8.7") || !strings.Contains(stderr.String(), paths["cache"]) {
					t.Fatalf("vault.sh with nothing to find: %v, %q, %s; want it to build into %s", shErr, sh, stderr.String(), paths["cache"])
				}
			}
		})
	}
}

// TestPinnedVersionOfThisCheckout reads the real scripts/vault/go.mod.
func TestPinnedVersionOfThisCheckout(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	v, err := PinnedVersion(root)
	if err != nil || !strings.HasPrefix(v, "v1.") {
		t.Fatalf("PinnedVersion(%s) = %q, %v", root, v, err)
	}
}
