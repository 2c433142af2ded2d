// What the harness reads about the host: CPU time and memory of Vault and
// its plugin processes from /proc, the machine and the engine's source
// commit for the report.

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// procCPU is the user+system CPU time a process has used.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	f := procStatFields(pid)
	// After the command: state(0) ppid(1) ... utime(11) stime(12), in USER_HZ (100 on Linux).
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procStatusKB reads a "Key:  N kB" line of /proc/<pid>/status.
func procStatusKB(pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, key+":") {
			fields := strings.Fields(line[len(key)+1:])
			if len(fields) > 0 {
				n, _ := strconv.ParseInt(fields[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// memSample is a process's resident memory from /proc/<pid>/status, in KB:
// VmRSS = RssAnon (heap, stacks: what the process allocated) + RssFile
// (pages mapped from files: the binary) + RssShmem.
type memSample struct {
	RSS, Anon, File, HWM int64
}

func procMem(pid int) memSample {
	return memSample{RSS: procStatusKB(pid, "VmRSS"), Anon: procStatusKB(pid, "RssAnon"), File: procStatusKB(pid, "RssFile"), HWM: procStatusKB(pid, "VmHWM")}
}

// procEnviron is a process's environment; nil if it cannot be read.
func procEnviron(pid int) map[string]string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

// procStatFields returns the fields of /proc/<pid>/stat after the command
// name (which may hold spaces and parentheses); nil if it cannot be read.
func procStatFields(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func procPPid(pid int) int {
	f := procStatFields(pid)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// findPlugin returns the pid of the child of Vault (ppid) whose command line
// runs command, or 0.
func findPlugin(ppid int, command string) int {
	return findPluginExcept(ppid, command, 0)
}

// findPluginExcept is findPlugin passing over the process not (one a reload
// replaces, which may not have exited yet).
func findPluginExcept(ppid int, command string, not int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == not {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv0 := string(bytes.SplitN(cmdline, []byte{0}, 2)[0])
		if filepath.Base(argv0) != command {
			continue
		}
		if ppid > 0 && procPPid(pid) != ppid {
			continue
		}
		return pid
	}
	return 0
}

// waitPlugin polls for the plugin process for up to d.
func waitPlugin(ppid int, command string, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		if pid := findPlugin(ppid, command); pid > 0 || time.Now().After(deadline) {
			return pid
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// machine describes the host for the report.
type machine struct {
	CPUs     int
	Model    string
	MemTotal string
	Kernel   string
}

func describeMachine(ncpu int) machine {
	m := machine{CPUs: ncpu, Model: "unknown", MemTotal: "unknown", Kernel: "unknown"}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				if i := strings.IndexByte(line, ':'); i >= 0 {
					m.Model = strings.TrimSpace(line[i+1:])
					break
				}
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					kb, _ := strconv.ParseFloat(f[1], 64)
					m.MemTotal = fmt.Sprintf("%.1f GiB", kb/1024/1024)
				}
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	return m
}

// gitCommit names the engine's source: the commit, and whether the engine's
// directories differ from it.
func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--", "backend", "paths", "cmd", "go.mod", "go.sum").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " with uncommitted changes in backend/, paths/, cmd/ or go.mod"
	}
	return c
}
