package sqlstore

import "testing"

func TestRebind(t *testing.T) {
	db := &DB{Dialect: Postgres}
	if got := db.q("SELECT a FROM t WHERE x = ? AND y IN (?, ?) LIMIT ?"); got != "SELECT a FROM t WHERE x = $1 AND y IN ($2, $3) LIMIT $4" {
		t.Fatalf("rebind: %s", got)
	}
	if got := (&DB{Dialect: SQLite}).q("x = ?"); got != "x = ?" {
		t.Fatalf("sqlite: %s", got)
	}
}

func TestPrefixed(t *testing.T) {
	if got := prefixed("r.", "a, b,\n\tc"); got != "r.a, r.b,\n\tr.c" {
		t.Fatalf("prefixed: %q", got)
	}
}

// FuzzCursor: any string is a cursor or an invalid error, never a panic; cursors round-trip.
func FuzzCursor(f *testing.F) {
	f.Add("")
	f.Add(cursor{at: 1772442000000000, id: "C01"}.String())
	f.Add("MTIzOg")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := parseCursor(s)
		if err != nil || !ok {
			return
		}
		back, ok, err := parseCursor(c.String())
		if err != nil || !ok || back != c {
			t.Fatalf("cursor %q → %+v does not round-trip: %+v %v", s, c, back, err)
		}
	})
}
