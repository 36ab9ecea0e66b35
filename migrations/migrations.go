// Package migrations holds callbridge's SQL schema, one numbered file per step
// (NNNN_name.sql), shared by the SQLite (package sqlite) and PostgreSQL (package postgres)
// stores. Each store runs the steps its database has not seen, each in one transaction with
// its schema_migrations row.
//
// The files are portable SQL that both databases run unchanged: TEXT, INTEGER and BIGINT
// columns only (times are BIGINT microseconds since the Unix epoch, UTC; JSON values are
// TEXT; booleans are INTEGER 0/1), PRIMARY KEY / UNIQUE / REFERENCES / CHECK constraints,
// plain and partial indexes, no AUTOINCREMENT/SERIAL, no database-specific types or
// functions. A released file is never edited; a change is a new file.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
)

//go:embed *.sql
var files embed.FS

// Migration is one step of the schema.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var fileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// All returns every migration in version order. Errors: a file not named NNNN_name.sql, or
// two files with the same version (both are build mistakes caught by the tests).
func All() ([]Migration, error) { return load(files) }

func load(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, name := range names {
		m := fileName.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", name)
		}
		version, _ := strconv.Atoi(m[1])
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: version, Name: m[2], SQL: string(data)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", out[i].Version)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no migrations embedded")
	}
	return out, nil
}

// Latest returns the newest version.
func Latest() int {
	all, err := All()
	if err != nil {
		return 0
	}
	return all[len(all)-1].Version
}
