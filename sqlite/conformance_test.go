package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/callbridge/callbridge/storetest"
)

// TestConformance runs the store conformance suite that the PostgreSQL store runs too.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store {
		return openDB(t, filepath.Join(t.TempDir(), "callbridge.db"))
	})
}
