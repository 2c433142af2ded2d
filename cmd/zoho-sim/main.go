// Command zoho-sim runs the project's simulator of Zoho's OAuth accounts
// server on loopback, so the engine can be tried without a Zoho account.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zoho-vault/vault-plugin-secrets-zoho/backend/zoho/zohosim"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "loopback address to listen on (port 0 picks a free one)")
	tokenTTL := flag.Duration("token-ttl", time.Hour, "access token lifetime")
	codeTTL := flag.Duration("grant-code-ttl", time.Minute, "lifetime of grant codes from the consent redirect")
	throttleStatus := flag.Int("throttle-status", 200, `HTTP status of the "Access Denied" answer (200 or 400)`)
	liveCap := flag.Int("live-token-cap", 10, "live access tokens per refresh token before the oldest is evicted")
	rateLimit := flag.Int("rate-limit", 10, "access tokens per refresh token per rate window")
	rateWindow := flag.Duration("rate-window", 10*time.Minute, "rolling rate window")
	legacy := flag.Bool("legacy-millis", false, "answer expires_in in milliseconds with expires_in_sec beside it")
	demoID := flag.String("demo-client-id", "", "register a client with this id at start")
	demoSecret := flag.String("demo-client-secret", "", "secret of the demo client (generated if empty)")
	demoDC := flag.String("demo-dc", "us", "data center of the demo client")
	readyFile := flag.String("ready-file", "", "write the base URL to this file once listening")
	flag.Parse()

	if *throttleStatus != 200 && *throttleStatus != 400 {
		log.Fatalf("-throttle-status must be 200 or 400")
	}
	sim := zohosim.New(zohosim.Config{
		AccessTokenTTL:     *tokenTTL,
		GrantCodeTTL:       *codeTTL,
		ThrottleHTTPStatus: *throttleStatus,
		LiveTokenCap:       *liveCap,
		TokenRateLimit:     *rateLimit,
		TokenRateWindow:    *rateWindow,
		LegacyMillis:       *legacy,
	})
	base, err := sim.Start(*addr)
	if err != nil {
		log.Fatal(err)
	}
	if *demoID != "" {
		c := sim.RegisterClient(zohosim.Client{ID: *demoID, Secret: *demoSecret, DC: *demoDC})
		fmt.Fprintf(os.Stderr, "demo client %s registered in %s\n", c.ID, c.DC)
	}
	fmt.Println(base)
	if *readyFile != "" {
		if err := os.WriteFile(*readyFile, []byte(base+"\n"), 0o600); err != nil {
			log.Fatal(err)
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	_ = sim.Close()
}
