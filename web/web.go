// Package web holds the browser side of callbridge, built from the TypeScript under src/ by
// esbuild (`npm ci && npm run build` in this directory, or `go generate ./web`) and committed
// under dist/, so that the Go build needs no Node:
//
//	sdk/callbridge.js, sdk/callbridge.d.ts          the SDK (ES module), served at /sdk/
//	sdk/callbridge-bar.js, sdk/callbridge-bar.d.ts  the <callbridge-bar> web component
//	app/index.html, app/desktop.js, app/desktop.css the agent desktop, served at / and /app/
//
// CI rebuilds dist/ and fails when it differs from the committed files (see .ci/run).
package web

import (
	"embed"
	"io/fs"
)

//go:generate npm run build

//go:embed dist
var dist embed.FS

// FS returns the built files with paths relative to dist/ ("sdk/callbridge.js", …).
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path and embedded: cannot happen
	}
	return sub
}
