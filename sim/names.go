package sim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// callerNames are the calling names of automatic inbound calls (ANIName).
var callerNames = [...]string{
	"John Smith", "Maria Garcia", "Wei Chen", "Fatima Khan", "James Johnson", "Ana Silva",
	"Olga Petrova", "Kenji Tanaka", "Amara Okafor", "Liam O'Brien", "Sofia Rossi",
	"Lucas Martin", "Priya Patel", "Noah Williams", "Emma Brown", "Carlos Lopez",
	"Chloe Dubois", "Ahmed Hassan", "Ingrid Larsen", "Mateo Fernandez",
}

// IVR answers attached to inbound calls.
var (
	ivrLangs   = [...]string{"en", "es", "fr"}
	ivrReasons = [...]string{"billing", "sales", "support"}
)

// randomCaller returns an outside number +1555xxxxxxx and a calling name.
func randomCaller(r *rand.Rand) (ani, name string) {
	return fmt.Sprintf("+1555%07d", r.IntN(10_000_000)), callerNames[r.IntN(len(callerNames))]
}

// randomIVR returns the attached data an IVR collects: IVR_LANG, IVR_ACCOUNT, IVR_REASON.
func randomIVR(r *rand.Rand) map[string]string {
	return map[string]string{
		"IVR_LANG":    ivrLangs[r.IntN(len(ivrLangs))],
		"IVR_ACCOUNT": fmt.Sprintf("%05d", r.IntN(100_000)),
		"IVR_REASON":  ivrReasons[r.IntN(len(ivrReasons))],
	}
}

// between returns a duration drawn uniformly from [lo, hi], in whole milliseconds when the
// range allows it, so event times stay readable.
func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	span := hi - lo
	if span >= time.Millisecond {
		return lo + time.Duration(r.Int64N(int64(span/time.Millisecond)+1))*time.Millisecond
	}
	return lo + time.Duration(r.Int64N(int64(span)+1))
}
