// Part 5: Vault lease growth per 1000 reads and the size of one lease entry
// in Vault's storage, beside the floor plugin's.

package main

import (
	"context"
	"time"
)

type leaseResult struct {
	Reads            int
	Errors           int
	LeasesBefore     int
	LeasesAfter      int
	VaultRSSBeforeKB int64
	VaultRSSAfterKB  int64
	EngineEntryBytes int // one engine lease entry in Vault's storage (sys/expire/id/...)
	FloorEntryBytes  int // one floor leased/ lease entry, for comparison
	Seconds          float64
}

func (b *bench) partLeases(ctx context.Context) error {
	n := b.set.LeaseReads
	logf("part 5: lease growth over %d reads", n)
	c := b.client()
	a, err := b.createAccount(ctx, c, b.simLong, "leases")
	if err != nil {
		return err
	}
	prefix := "zoho/creds/" + a.name + "/"
	before, err := listLeases(ctx, c, prefix)
	if err != nil {
		return err
	}
	res := leaseResult{Reads: n, LeasesBefore: len(before)}
	t := time.Now()
	failed, _ := parallel(ctx, n, 16, func(ctx context.Context, i int) error {
		return readRaw(ctx, c, "zoho/creds/"+a.name)
	})
	res.Seconds = time.Since(t).Seconds()
	res.Errors = failed
	after, err := listLeases(ctx, c, prefix)
	if err != nil {
		return err
	}
	res.LeasesAfter = len(after)
	// Sizes of the lease entries Vault stores (decrypted, through sys/raw).
	var sizes []int
	for i := 0; i < len(after) && i < 20; i++ {
		if s, err := rawEntrySize(ctx, c, "sys/expire/id/"+prefix+after[i]); err == nil {
			sizes = append(sizes, s)
		}
	}
	res.EngineEntryBytes = median(sizes)
	if err := readRaw(ctx, c, "floor/leased/sample"); err == nil {
		if ids, err := listLeases(ctx, c, "floor/leased/sample/"); err == nil && len(ids) > 0 {
			res.FloorEntryBytes, _ = rawEntrySize(ctx, c, "sys/expire/id/floor/leased/sample/"+ids[0])
		}
	}
	b.res.Leases = res
	logf("  leases %d → %d; lease entry %d bytes (floor %d)", res.LeasesBefore, res.LeasesAfter, res.EngineEntryBytes, res.FloorEntryBytes)
	return nil
}
