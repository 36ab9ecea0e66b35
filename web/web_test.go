package web_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/callbridge/callbridge/web"
)

// TestBuiltFiles checks that the committed build has every file the gateway serves, and that
// the modules are esbuild's output of src/ (whether it is current is checked by .ci/run).
func TestBuiltFiles(t *testing.T) {
	for _, name := range []string{
		"sdk/callbridge.js", "sdk/callbridge.d.ts", "sdk/callbridge-bar.js", "sdk/callbridge-bar.d.ts",
		"app/index.html", "app/desktop.js", "app/desktop.css",
	} {
		b, err := fs.ReadFile(web.FS(), name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.HasSuffix(name, ".js") && !strings.HasPrefix(string(b), "// Built from web/src by `npm run build`") {
			t.Errorf("%s does not start with the build banner", name)
		}
	}
	bar, _ := fs.ReadFile(web.FS(), "sdk/callbridge-bar.js")
	if !strings.Contains(string(bar), `from "./callbridge.js"`) {
		t.Error("callbridge-bar.js should import the SDK from ./callbridge.js (one SDK per page)")
	}
}

// TestSourcesWriteTextOnly checks that the SDK, the bar and the desktop put server data (caller
// names, attached data, notes) into the page as text only: no source parses HTML. The bundled
// morphdom has an HTML-parsing path, taken only when it is given a string; the bar gives it
// elements.
func TestSourcesWriteTextOnly(t *testing.T) {
	htmlSinks := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser`)
	morphString := regexp.MustCompile("morphdom\\([^,]+,\\s*[\"'`]")
	n := 0
	err := filepath.WalkDir("src", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ts") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for i, line := range strings.Split(string(b), "\n") {
			if htmlSinks.MatchString(line) || morphString.MatchString(line) {
				t.Errorf("%s:%d parses HTML: %s", path, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("found %d sources under src/, want the SDK, the bar and the desktop", n)
	}
}
