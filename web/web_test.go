package web_test

import (
	"io/fs"
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
