// Package examples embeds the example provisioning files, so that `callbridge replay` can use
// examples/asterisk-22.yaml without a checkout.
package examples

import "embed"

// FS holds every *.yaml file of this folder.
//
//go:embed *.yaml
var FS embed.FS
