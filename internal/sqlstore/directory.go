package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/callbridge/callbridge"
)

// Directory returns the sites with their switches, and every tenant with its DIDs, attached
// data keys, reason codes, queues and users, read in one transaction. Sites and tenants are
// ordered by id, queues by name, users by username; switches, DIDs, attached data keys,
// reason codes and a user's queues keep the order they were provisioned in. A provisioning
// without sites stored the implicit callbridge.DefaultSite (UTC, no switches); a site without
// switches has nil Switches. Tenant lists are empty slices, never nil; a user without
// queues has nil Queues. Users carry no password or hash. Errors: a wrapped database error or
// ctx's error.
func (db *DB) Directory(ctx context.Context) (callbridge.Directory, error) {
	tx, err := db.SQL.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return callbridge.Directory{}, fmt.Errorf("directory: %w", err)
	}
	defer tx.Rollback()
	r := reader{ctx: ctx, tx: tx, db: db}

	dir := callbridge.Directory{Sites: []callbridge.Site{}}
	siteIndex := make(map[callbridge.SiteID]int)
	r.each("SELECT id, name, time_zone FROM sites ORDER BY id", func(rows *sql.Rows) error {
		var s callbridge.Site
		if err := rows.Scan(&s.ID, &s.Name, &s.TimeZone); err != nil {
			return err
		}
		siteIndex[s.ID] = len(dir.Sites)
		dir.Sites = append(dir.Sites, s)
		return nil
	})
	r.each("SELECT site, pbx, ari FROM site_switches ORDER BY site, position", func(rows *sql.Rows) error {
		var id callbridge.SiteID
		var sw callbridge.SwitchConfig
		if err := rows.Scan(&id, &sw.PBX, &sw.ARI); err != nil {
			return err
		}
		s := &dir.Sites[siteIndex[id]]
		s.Switches = append(s.Switches, sw)
		return nil
	})
	index := make(map[callbridge.TenantID]int)
	r.each("SELECT id, name, wrap_up_seconds, demo FROM tenants ORDER BY id", func(rows *sql.Rows) error {
		var t callbridge.TenantConfig
		var demo int
		if err := rows.Scan(&t.ID, &t.Name, &t.WrapUpSeconds, &demo); err != nil {
			return err
		}
		t.Demo = demo == 1
		t.DIDs, t.AttachedData, t.ReasonCodes = []string{}, []string{}, []string{}
		t.Queues, t.Users = []callbridge.QueueConfig{}, []callbridge.UserConfig{}
		index[t.ID] = len(dir.Tenants)
		dir.Tenants = append(dir.Tenants, t)
		return nil
	})
	// tenantOf returns the tenant a child row belongs to; foreign keys guarantee it exists.
	tenantOf := func(id callbridge.TenantID) *callbridge.TenantConfig { return &dir.Tenants[index[id]] }

	r.each("SELECT tenant, did FROM tenant_dids ORDER BY tenant, position", func(rows *sql.Rows) error {
		var id callbridge.TenantID
		var did string
		if err := rows.Scan(&id, &did); err != nil {
			return err
		}
		t := tenantOf(id)
		t.DIDs = append(t.DIDs, did)
		return nil
	})
	r.each("SELECT tenant, name FROM tenant_attached_data_keys ORDER BY tenant, position", func(rows *sql.Rows) error {
		var id callbridge.TenantID
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			return err
		}
		t := tenantOf(id)
		t.AttachedData = append(t.AttachedData, key)
		return nil
	})
	r.each("SELECT tenant, code FROM tenant_reason_codes ORDER BY tenant, position", func(rows *sql.Rows) error {
		var id callbridge.TenantID
		var code string
		if err := rows.Scan(&id, &code); err != nil {
			return err
		}
		t := tenantOf(id)
		t.ReasonCodes = append(t.ReasonCodes, code)
		return nil
	})
	r.each("SELECT tenant, name, wrap_up_seconds, site FROM queues ORDER BY tenant, name", func(rows *sql.Rows) error {
		var id callbridge.TenantID
		var q callbridge.QueueConfig
		var wrap sql.NullInt64
		if err := rows.Scan(&id, &q.Name, &wrap, &q.Site); err != nil {
			return err
		}
		if wrap.Valid {
			n := int(wrap.Int64)
			q.WrapUpSeconds = &n
		}
		t := tenantOf(id)
		t.Queues = append(t.Queues, q)
		return nil
	})
	type userPos struct{ tenant, user int }
	users := make(map[userKey]userPos)
	r.each("SELECT tenant, username, role, name, device, interface, site FROM users ORDER BY tenant, username", func(rows *sql.Rows) error {
		var id callbridge.TenantID
		var u callbridge.UserConfig
		var device sql.NullString
		if err := rows.Scan(&id, &u.Username, &u.Role, &u.Name, &device, &u.Interface, &u.Site); err != nil {
			return err
		}
		u.Device = callbridge.DeviceID(device.String)
		t := tenantOf(id)
		users[userKey{id, u.Username}] = userPos{index[id], len(t.Users)}
		t.Users = append(t.Users, u)
		return nil
	})
	r.each("SELECT tenant, username, queue FROM user_queues ORDER BY tenant, username, position", func(rows *sql.Rows) error {
		var k userKey
		var q callbridge.QueueName
		if err := rows.Scan(&k.tenant, &k.username, &q); err != nil {
			return err
		}
		pos := users[k]
		u := &dir.Tenants[pos.tenant].Users[pos.user]
		u.Queues = append(u.Queues, q)
		return nil
	})
	if r.err != nil {
		return callbridge.Directory{}, fmt.Errorf("directory: %w", r.err)
	}
	return dir, nil
}

// FindUsers returns the users named username in every tenant, ordered by tenant, with their
// password hashes (for login). No such user: an empty result and no error. Errors: a wrapped
// SQLite error or ctx's error.
func (db *DB) FindUsers(ctx context.Context, username string) ([]callbridge.User, error) {
	if username == "" {
		return nil, nil
	}
	rows, err := db.SQL.QueryContext(ctx, db.q(`SELECT tenant, username, password_hash, role, name
		FROM users WHERE username = ? ORDER BY tenant`), username)
	if err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	defer rows.Close()
	var out []callbridge.User
	for rows.Next() {
		var u callbridge.User
		if err := rows.Scan(&u.Tenant, &u.Username, &u.PasswordHash, &u.Role, &u.Name); err != nil {
			return nil, fmt.Errorf("find users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find users: %w", err)
	}
	return out, nil
}

// reader runs the queries of one read transaction and keeps the first error; after an error
// every further call does nothing.
type reader struct {
	ctx context.Context
	tx  *sql.Tx
	db  *DB
	err error
}

// each calls fn for every row of query.
func (r *reader) each(query string, fn func(*sql.Rows) error) {
	if r.err != nil {
		return
	}
	rows, err := r.tx.QueryContext(r.ctx, r.db.q(query))
	if err != nil {
		r.err = err
		return
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			r.err = err
			return
		}
	}
	r.err = rows.Err()
}
