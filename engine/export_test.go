package engine

import "github.com/callbridge/callbridge"

// DevCallsOf exposes the engine's device → calls index to the black-box tests, which check
// that Restore rebuilds it exactly.
func DevCallsOf(e *Engine) map[callbridge.DeviceID]map[string]struct{} { return e.devCalls }
