package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// canonicalMarker precedes, in docs/design.md ("Refreshing"), the one
// sentence that says whether leases renew and when a token is refreshed.
const canonicalMarker = "<!-- canonical: renewal-and-refresh -->"

// canonicalSentence returns that sentence: the lines after the marker up to
// the next blank line, joined.
func canonicalSentence(t *testing.T) string {
	t.Helper()
	design := readFile(t, filepath.Join(docsDir(t), "design.md"))
	_, after, ok := strings.Cut(design, canonicalMarker)
	if !ok {
		t.Fatalf("docs/design.md has no %s", canonicalMarker)
	}
	para, _, _ := strings.Cut(strings.TrimLeft(after, "\n"), "\n\n")
	s := collapseSpace(para)
	if s == "" {
		t.Fatalf("docs/design.md: nothing after %s", canonicalMarker)
	}
	return s
}

var spaceRe = regexp.MustCompile(`\s+`)

func collapseSpace(s string) string { return strings.TrimSpace(spaceRe.ReplaceAllString(s, " ")) }

// commentLineRe is a whole comment line of the example formats (HCL, YAML,
// Terraform: '#' or '//').
var commentLineRe = regexp.MustCompile(`^\s*(#+|//+)\s?(.*)$`)

// commentText joins a file's comment lines, without their markers, into one
// line: a sentence wrapped over several comment lines reads as one.
func commentText(src string) string {
	var parts []string
	for _, line := range strings.Split(src, "\n") {
		if m := commentLineRe.FindStringSubmatch(line); m != nil {
			parts = append(parts, m[2])
		}
	}
	return collapseSpace(strings.Join(parts, " "))
}

// aboutRenewalOrRefresh finds comment text that speaks of whether leases
// renew or of when the engine refreshes a token.
var aboutRenewalOrRefresh = regexp.MustCompile(`(?i)renewab|refresh point|refreshed\b.{0,80}\bbefore\b|token's (life|lifetime)`)

// staleRe matches what an older engine's documentation said: leases that do
// not renew, a refresh at three quarters of the token's life.
var staleRe = regexp.MustCompile(`(?i)\bnot renewable\b|\bnon-renewable\b|\bunrenewable\b|three[ -]quarters?|\b3/4\b`)

// staleExempt are phrases that contain a stale phrase for a reason: Vault
// Agent's own log line for responses it does not cache, and the benchmark
// report's description of the floor plugin's plain lease (not the engine's).
var staleExempt = []string{
	"pass-through response; secret not renewable",
	"under a plain lease (`leased/`: 1 h, not renewable, no internal data",
}

// TestExampleCommentsAgreeWithDesign keeps what the example files say about
// lease renewal and the refresh point from drifting from the engine. The
// comments of an example under docs/examples once said the leases were not
// renewable and that the refresh came at about three quarters of the token's
// life, long after the engine changed. docs/design.md now holds one marked
// sentence on both; an example whose comments speak of renewability or of
// when a token is refreshed must repeat that sentence word for word (wrapped
// over comment lines as needed) or point at docs/design.md#refreshing. A
// change of behaviour is then one edit of that sentence, and this test names
// every example to update. The phrases of the old behaviour are refused
// anywhere in docs/, docs/examples and the README, so a stale statement cannot
// come back in a file this test does not otherwise look at.
func TestExampleCommentsAgreeWithDesign(t *testing.T) {
	canonical := canonicalSentence(t)
	for _, want := range []string{"renewable", "8 minutes before"} {
		if !strings.Contains(canonical, want) {
			t.Errorf("the canonical sentence of docs/design.md no longer says %q: update this test and the examples together (%q)", want, canonical)
		}
	}
	n := 0
	for _, f := range exampleFiles(t, "") {
		comments := commentText(readFile(t, f))
		if !aboutRenewalOrRefresh.MatchString(comments) {
			continue
		}
		n++
		if !strings.Contains(comments, canonical) && !strings.Contains(comments, "docs/design.md#refreshing") {
			t.Errorf("%s speaks of lease renewal or of when a token is refreshed, but neither repeats the sentence of docs/design.md (%q) nor refers to docs/design.md#refreshing", rel(t, f), canonical)
		}
	}
	if n < 2 {
		t.Errorf("only %d example files speak of renewal or the refresh point (agent/agent.hcl and kubernetes/vso-dynamic-secret.yaml did): the check checks little", n)
	}
}

func TestNoStaleRenewalPhrases(t *testing.T) {
	files := []string{filepath.Join(repoRoot(t), "README.md")}
	err := filepath.WalkDir(docsDir(t), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".md") || strings.HasPrefix(path, examplesDir(t)+string(filepath.Separator))) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Words wrapped over lines (and comment markers between them) are
		// joined before matching.
		text := string(data)
		if c := commentText(text); c != "" {
			text += "\n" + c
		}
		text = collapseSpace(text)
		for _, ok := range staleExempt {
			text = strings.ReplaceAll(text, ok, "")
		}
		seen := map[string]bool{}
		for _, m := range staleRe.FindAllString(text, -1) {
			if seen[strings.ToLower(m)] {
				continue
			}
			seen[strings.ToLower(m)] = true
			t.Errorf("%s says %q: the engine's leases are renewable and a token in steady use is refreshed 8 minutes before it expires (docs/design.md#refreshing)", rel(t, f), m)
		}
	}
	if len(files) < 10 {
		t.Fatalf("only %d files looked at", len(files))
	}
}

func TestStalePhrasesAreFound(t *testing.T) {
	for _, s := range []string{
		"# The engine's leases are not\n# renewable, so",
		"about three quarters of the token's life",
		"at three-quarters of",
		"refresh at 3/4 of the lifetime",
	} {
		if !staleRe.MatchString(collapseSpace(s)) && !staleRe.MatchString(commentText(s)) {
			t.Errorf("%q is not recognized as stale", s)
		}
	}
	if staleRe.MatchString("renewable, but a renewal never extends a lease") {
		t.Error("the current wording is taken for a stale phrase")
	}
}
