// Part 4: many accounts: plugin and Vault memory with every account loaded,
// plugin start after a reload and the lazy first reads after it (the heap
// probe, heapprobe.go, shows where the plugin's memory goes).

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
)

type manyResult struct {
	Accounts         int
	CreateSeconds    float64
	CreateErrors     int
	CreateFirstErr   string
	ReadSeconds      float64
	ReadErrors       int
	ReadP50, ReadP99 time.Duration
	RSSBeforeKB      int64 // plugin, before the accounts were created
	RSSKB, HWMKB     int64 // plugin, after creating and reading every account
	VaultRSSKB       int64
	ReloadCall       time.Duration
	ReloadToRead     time.Duration // reload request sent → first creds read answered
	PIDBefore        int
	PIDAfter         int
	LazySeconds      float64
	LazyErrors       int
	LazyP50, LazyP99 time.Duration
	RSSAfterReloadKB int64 // the new plugin process, one account loaded
	RSSAfterLazyKB   int64
	LoadedBefore     int64 // zoho_accounts_loaded after the first pass (other parts' accounts too)
	LoadedAfterLazy  int64 // zoho_accounts_loaded after the lazy pass
	LeasesIssued     int64
	OtherCores       float64
}

func (b *bench) partMany(ctx context.Context) error {
	n := b.set.ManyAccounts
	logf("part 4: %d accounts", n)
	vaultPID := b.v.PID()
	res := manyResult{Accounts: n}
	cpu0 := snapCPU(b.pids)
	res.PIDBefore = findPlugin(vaultPID, engineCommand)
	res.RSSBeforeKB = procStatusKB(res.PIDBefore, "VmRSS")
	name := func(i int) string { return fmt.Sprintf("many-%05d", i) }
	c := b.client()

	t := time.Now()
	failed, err := parallel(ctx, n, b.set.CreateLimit, func(ctx context.Context, i int) error {
		_, err := b.createAccount(ctx, c, b.simLong, name(i))
		return err
	})
	res.CreateSeconds = time.Since(t).Seconds()
	res.CreateErrors = failed
	if err != nil {
		res.CreateFirstErr = err.Error()
	}
	logf("  created %d accounts in %.1f s (%d errors)", n, res.CreateSeconds, failed)
	if ctx.Err() != nil {
		return ctx.Err()
	}

	pass := func() (float64, int, latStats) {
		var mu sync.Mutex
		lats := make([]time.Duration, 0, n)
		t := time.Now()
		failed, _ := parallel(ctx, n, b.set.CreateLimit, func(ctx context.Context, i int) error {
			t := time.Now()
			err := readRaw(ctx, c, "zoho/creds/"+name(i))
			if err == nil {
				mu.Lock()
				lats = append(lats, time.Since(t))
				mu.Unlock()
			}
			return err
		})
		secs := time.Since(t).Seconds()
		res.LeasesIssued += int64(len(lats))
		return secs, failed, summarise(lats, failed, secs, "")
	}
	var st latStats
	res.ReadSeconds, res.ReadErrors, st = pass()
	res.ReadP50, res.ReadP99 = st.P50, st.P99
	res.RSSKB = procStatusKB(res.PIDBefore, "VmRSS")
	res.HWMKB = procStatusKB(res.PIDBefore, "VmHWM")
	res.VaultRSSKB = procStatusKB(vaultPID, "VmRSS")
	res.LoadedBefore = metricValue(ctx, c, "zoho/metrics", "zoho_accounts_loaded")
	logf("  read each once in %.1f s; plugin RSS %d KB (peak %d KB), vault RSS %d KB", res.ReadSeconds, res.RSSKB, res.HWMKB, res.VaultRSSKB)

	// Other load while creating and reading (the plugin's pid changes below).
	res.OtherCores = cpu0.to(snapCPU(b.pids)).otherCores()

	// Reload the plugin and time it until a creds read is answered.
	t = time.Now()
	if _, err := b.admin.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Plugin: engineName}); err != nil {
		return fmt.Errorf("reloading the plugin: %w", err)
	}
	res.ReloadCall = time.Since(t)
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := readRaw(rctx, c, "zoho/creds/"+name(0))
		cancel()
		if err == nil {
			break
		}
		if time.Since(t) > 60*time.Second || ctx.Err() != nil {
			return fmt.Errorf("no creds read within 60 s of the reload: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.ReloadToRead = time.Since(t)
	res.PIDAfter = waitPlugin(vaultPID, engineCommand, 5*time.Second)
	b.pids.engine = res.PIDAfter
	res.RSSAfterReloadKB = procStatusKB(res.PIDAfter, "VmRSS")
	logf("  reload: call %.0f ms, first read after %.0f ms (plugin pid %d → %d)", ms(res.ReloadCall), ms(res.ReloadToRead), res.PIDBefore, res.PIDAfter)

	res.LazySeconds, res.LazyErrors, st = pass()
	res.LazyP50, res.LazyP99 = st.P50, st.P99
	res.RSSAfterLazyKB = procStatusKB(res.PIDAfter, "VmRSS")
	res.LoadedAfterLazy = metricValue(ctx, c, "zoho/metrics", "zoho_accounts_loaded")
	logf("  lazy first reads of %d accounts in %.1f s (p99 %.1f ms); plugin RSS %d KB; %d accounts loaded",
		n, res.LazySeconds, ms(res.LazyP99), res.RSSAfterLazyKB, res.LoadedAfterLazy)
	b.res.Many = res
	return nil
}

// metricValue reads one unlabelled series from a Prometheus text answer.
func metricValue(ctx context.Context, c *api.Client, path, name string) int64 {
	resp, err := c.Logical().ReadRawWithContext(ctx, path)
	if err != nil || resp == nil || resp.StatusCode != http.StatusOK {
		if resp != nil {
			resp.Body.Close()
		}
		return -1
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, name+" ") {
			f, err := strconv.ParseFloat(strings.TrimSpace(line[len(name):]), 64)
			if err == nil {
				return int64(f)
			}
		}
	}
	return -1
}
