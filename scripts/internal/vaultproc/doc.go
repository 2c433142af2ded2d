// Package vaultproc runs real Vault servers on loopback for the project's
// end-to-end tests and benchmark harness: it finds the vault binary, starts a
// dev server or a server on file or Raft storage with a private HOME, TMPDIR
// and log, waits until it answers, registers and mounts plugins by sha256 and
// version, and stops the server's process group, plugins included.
package vaultproc
