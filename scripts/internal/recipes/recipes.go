// Package recipes reads the runnable recipes of docs/products.md: per
// product, three shell code blocks whose fence says
// "sh recipe=<product> step=settings|config|call", and makes them into one
// bash script that runs offline against the Zoho simulator, for
// scripts/docscheck (the calls, with a stand-in for the vault CLI) and the
// end-to-end suite (all of it, against a real Vault).
package recipes

import (
	"bufio"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Recipe is one product's blocks.
type Recipe struct {
	Product  string
	Line     int // line of its first block in the document
	Settings string
	Config   string
	Call     string
}

// Account is the account name the config step writes (zoho/config/<name>).
func (r Recipe) Account() string {
	if m := configRe.FindStringSubmatch(r.Config); m != nil {
		return m[1]
	}
	return ""
}

// Scopes are the scopes the config step asks for.
func (r Recipe) Scopes() []string {
	if m := scopesRe.FindStringSubmatch(r.Config); m != nil {
		return strings.Split(strings.Trim(m[1], `"'`), ",")
	}
	return nil
}

// DataCenter is the config step's data_center.
func (r Recipe) DataCenter() string {
	if m := dcRe.FindStringSubmatch(r.Config); m != nil {
		return strings.Trim(m[1], `"'`)
	}
	return ""
}

var (
	configRe = regexp.MustCompile(`vault write zoho/config/([A-Za-z0-9_.-]+)`)
	scopesRe = regexp.MustCompile(`\bscopes=(\S+)`)
	dcRe     = regexp.MustCompile(`\bdata_center=(\S+)`)
	hostRe   = regexp.MustCompile(`https://[A-Za-z0-9.-]+`)
	fenceRe  = regexp.MustCompile("^```sh recipe=([a-z]+) step=(settings|config|call)\\s*$")
)

// Parse returns the recipes of a markdown document, sorted by product. Every
// recipe must have all three steps, once each.
func Parse(md string) ([]Recipe, error) {
	byProduct := map[string]*Recipe{}
	sc := bufio.NewScanner(strings.NewReader(md))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur *string
	var body []string
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if cur != nil {
			if strings.HasPrefix(line, "```") {
				*cur = strings.Join(body, "\n") + "\n"
				cur, body = nil, nil
				continue
			}
			body = append(body, line)
			continue
		}
		m := fenceRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := byProduct[m[1]]
		if r == nil {
			r = &Recipe{Product: m[1], Line: n}
			byProduct[m[1]] = r
		}
		var step *string
		switch m[2] {
		case "settings":
			step = &r.Settings
		case "config":
			step = &r.Config
		case "call":
			step = &r.Call
		}
		if *step != "" {
			return nil, fmt.Errorf("line %d: a second %s step for %s", n, m[2], m[1])
		}
		cur = step
	}
	if cur != nil {
		return nil, fmt.Errorf("an unterminated recipe block")
	}
	var out []Recipe
	for _, r := range byProduct {
		if r.Settings == "" || r.Config == "" || r.Call == "" {
			return nil, fmt.Errorf("line %d: the %s recipe lacks a step (settings, config and call are all needed)", r.Line, r.Product)
		}
		if r.Account() == "" || len(r.Scopes()) == 0 || r.DataCenter() == "" {
			return nil, fmt.Errorf("line %d: the %s recipe's config step names no account, scopes or data_center", r.Line, r.Product)
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Product < out[j].Product })
	return out, nil
}

// OfflineSettings is the settings step with every https://<host> replaced by
// base, the product's base URL in the simulator: the paths after the host
// stay the document's own, so the simulator judges them.
func (r Recipe) OfflineSettings(base string) string {
	return hostRe.ReplaceAllLiteralString(r.Settings, strings.TrimRight(base, "/"))
}

// OfflineConfig is the config step writing to the simulator's accounts
// server: accountsURL is added to the vault write.
func (r Recipe) OfflineConfig(accountsURL string) string {
	return configRe.ReplaceAllString(r.Config, "$0 accounts_url="+accountsURL)
}

// Script is a bash script running the settings, then config (if withConfig)
// and the call, stopping at the first failing command.
func (r Recipe) Script(base, accountsURL string, withConfig bool) string {
	var b strings.Builder
	b.WriteString("set -euo pipefail\n")
	b.WriteString(r.OfflineSettings(base))
	if withConfig {
		b.WriteString(r.OfflineConfig(accountsURL))
	}
	b.WriteString(r.Call)
	return b.String()
}
