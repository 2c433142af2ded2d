// Command zoho-sim runs the simulator of Zoho's OAuth accounts server
// (package zohosim) on a loopback address, so the engine can be tried
// without a Zoho account. It prints its base URL on stdout; every data center
// is served under <base>/<dc> and the control API under <base>/sim/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "zoho-sim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("zoho-sim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "loopback address to listen on (port 0 picks a free port)")
	tokenTTL := fs.Duration("token-ttl", zohosim.DefaultAccessTokenTTL, "lifetime of access tokens")
	codeTTL := fs.Duration("grant-code-ttl", zohosim.DefaultGrantCodeTTL, "lifetime of grant codes from the consent redirect")
	consentTTL := fs.Duration("consent-ttl", zohosim.DefaultConsentTTL, "how long a consent page can be answered (Accept or Deny)")
	throttleStatus := fs.Int("throttle-status", 200, `HTTP status of the "Access Denied" answer: 200 or 400`)
	liveCap := fs.Int("live-token-cap", zohosim.DefaultLiveTokenCap, "live access tokens per refresh token; one more evicts the oldest")
	rateLimit := fs.Int("rate-limit", zohosim.DefaultTokenRateLimit, "access tokens per refresh token per rate window")
	rateWindow := fs.Duration("rate-window", zohosim.DefaultTokenRateWindow, "rolling window of -rate-limit")
	refreshCap := fs.Int("refresh-token-cap", zohosim.DefaultRefreshTokenCap, "refresh tokens per user and client; one more deletes the oldest")
	codeLimit := fs.Int("grant-code-rate-limit", zohosim.DefaultGrantCodeRateLimit, "consent grant codes per client per 10 minutes")
	legacy := fs.Bool("legacy-millis", false, "answer expires_in in milliseconds with expires_in_sec beside it")
	deviceTTL := fs.Duration("device-code-ttl", zohosim.DefaultDeviceCodeTTL, "lifetime of device authorization codes")
	deviceInterval := fs.Duration("device-poll-interval", zohosim.DefaultDevicePollInterval, "least time between two polls of a device code (slow_down below it)")
	deviceAuto := fs.Bool("device-auto-approve", false, "approve every device code as the default user as soon as it is issued")
	demoID := fs.String("demo-client-id", "", "register a client with this id at start")
	demoSecret := fs.String("demo-client-secret", "", "secret of the demo client (generated if empty; GET /sim/clients/<id> shows it)")
	demoDC := fs.String("demo-dc", "us", "data center of the demo client")
	demoRedirect := fs.String("demo-redirect-uri", "", "comma-separated redirect URIs of the demo client")
	demoMultiDC := fs.String("demo-multi-dc", "", "comma-separated data centers besides -demo-dc the demo client is enabled in (Multi DC support)")
	readyFile := fs.String("ready-file", "", "write the base URL to this file once listening")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *throttleStatus != 200 && *throttleStatus != 400 {
		return fmt.Errorf("-throttle-status must be 200 or 400, not %d", *throttleStatus)
	}
	if !slices.Contains(zohosim.DataCenters, *demoDC) {
		return fmt.Errorf("-demo-dc %q is not one of %v", *demoDC, zohosim.DataCenters)
	}
	var multiDC []string
	if *demoMultiDC != "" {
		multiDC = strings.Split(*demoMultiDC, ",")
	}
	for _, dc := range multiDC {
		if !slices.Contains(zohosim.DataCenters, dc) {
			return fmt.Errorf("-demo-multi-dc: %q is not one of %v", dc, zohosim.DataCenters)
		}
	}
	for name, v := range map[string]time.Duration{"-token-ttl": *tokenTTL, "-grant-code-ttl": *codeTTL, "-rate-window": *rateWindow,
		"-device-code-ttl": *deviceTTL, "-consent-ttl": *consentTTL, "-device-poll-interval": *deviceInterval} {
		if v <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	for name, v := range map[string]int{"-live-token-cap": *liveCap, "-rate-limit": *rateLimit, "-refresh-token-cap": *refreshCap, "-grant-code-rate-limit": *codeLimit} {
		if v <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}

	sim := zohosim.New(zohosim.Config{
		AccessTokenTTL:     *tokenTTL,
		GrantCodeTTL:       *codeTTL,
		ConsentTTL:         *consentTTL,
		TokenRateLimit:     *rateLimit,
		TokenRateWindow:    *rateWindow,
		ThrottleHTTPStatus: *throttleStatus,
		LiveTokenCap:       *liveCap,
		RefreshTokenCap:    *refreshCap,
		GrantCodeRateLimit: *codeLimit,
		LegacyMillis:       *legacy,
		DeviceCodeTTL:      *deviceTTL,
		DevicePollInterval: *deviceInterval,
		DeviceAutoApprove:  *deviceAuto,
	})
	if *demoID != "" {
		var redirects []string
		if *demoRedirect != "" {
			redirects = strings.Split(*demoRedirect, ",")
		}
		c := sim.RegisterClient(zohosim.Client{ID: *demoID, Secret: *demoSecret, DC: *demoDC, RedirectURIs: redirects, MultiDC: multiDC})
		fmt.Fprintf(os.Stderr, "zoho-sim: demo client %s registered in %s\n", c.ID, c.DC)
	}

	base, err := sim.Start(*addr)
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Println(base)
	if *readyFile != "" {
		if err := writeAtomically(*readyFile, base+"\n"); err != nil {
			return fmt.Errorf("ready file: %w", err)
		}
		defer os.Remove(*readyFile)
	}
	fmt.Fprintf(os.Stderr, "zoho-sim: serving data centers %v under %s/<dc>, control API under %s/sim/\n",
		zohosim.DataCenters, base, base)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "zoho-sim: stopping")
	return nil
}

// writeAtomically writes a file that readers see either whole or not at all.
func writeAtomically(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".zoho-sim-ready-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
