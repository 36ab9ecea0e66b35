package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/provision"
)

// Provision stores p: it fills in defaults (provision.WithDefaults), checks p with
// provision.Validate, hashes clear passwords with bcrypt, then in one transaction upserts every
// tenant, queue and user of p.
//
// For each tenant of p its DIDs, attached data keys and reason codes are replaced by p's, and
// for each user of p the user's queues. Tenants, queues and users that are not in p are left
// alone (Provision never deletes them). A user whose clear password still matches the stored
// hash keeps that hash (unless the hash's cost is below the DB's bcrypt cost), so provisioning
// the same document again changes nothing.
//
// Errors: a *callbridge.Error with code invalid for a bad document, for a DID that belongs to a
// tenant not in p, or for a device that belongs to a user not in p; in those cases nothing
// is changed. Otherwise a wrapped database error or ctx's error, also with nothing changed.
func (db *DB) Provision(ctx context.Context, p callbridge.Provisioning) error {
	p = provision.WithDefaults(p)
	if err := provision.Validate(p); err != nil {
		return err
	}
	hashes, hashed, err := db.passwordHashes(ctx, p)
	if err != nil {
		return err
	}

	tx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	defer tx.Rollback()
	w := writer{ctx: ctx, tx: tx, db: db}
	// Lists first go away for every tenant of p, so a DID may move between two tenants of p.
	for _, t := range p.Tenants {
		w.tenant(t)
	}
	users := 0
	for _, t := range p.Tenants {
		w.lists(t)
		w.queues(t)
		w.users(t, hashes)
		users += len(t.Users)
	}
	if w.err != nil {
		return w.err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("provision: commit: %w", err)
	}
	db.log().Info("store: provisioned", "tenants", len(p.Tenants), "users", users, "passwords_hashed", hashed)
	return nil
}

// userKey names a user across tenants.
type userKey struct {
	tenant   callbridge.TenantID
	username string
}

// passwordHashes returns the hash to store for every user of p and how many passwords it had
// to hash: a given password_hash as is; the stored hash when the clear password matches it;
// else a new bcrypt hash. The bcrypt work runs on up to GOMAXPROCS goroutines, outside the
// write transaction.
func (db *DB) passwordHashes(ctx context.Context, p callbridge.Provisioning) (map[userKey]string, int, error) {
	type job struct {
		key      userKey
		password string
		stored   string
	}
	hashes := make(map[userKey]string)
	var jobs []job
	for _, t := range p.Tenants {
		stored, err := db.storedHashes(ctx, t.ID)
		if err != nil {
			return nil, 0, err
		}
		for _, u := range t.Users {
			k := userKey{t.ID, u.Username}
			if u.PasswordHash != "" {
				hashes[k] = u.PasswordHash
				continue
			}
			jobs = append(jobs, job{key: k, password: u.Password, stored: stored[u.Username]})
		}
	}

	results := make([]string, len(jobs))
	errs := make([]error, len(jobs))
	var next, hashed atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[i] = err
					continue
				}
				j := jobs[i]
				if db.keepHash(j.stored, j.password) {
					results[i] = j.stored
					continue
				}
				h, err := bcrypt.GenerateFromPassword([]byte(j.password), db.BcryptCost)
				if err != nil {
					errs[i] = fmt.Errorf("hash password of %s/%s: %w", j.key.tenant, j.key.username, err)
					continue
				}
				results[i] = string(h)
				hashed.Add(1)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, 0, fmt.Errorf("provision: %w", ctxErr)
		}
		return nil, 0, fmt.Errorf("provision: %w", err)
	}
	for i, j := range jobs {
		hashes[j.key] = results[i]
	}
	return hashes, int(hashed.Load()), nil
}

// keepHash reports whether stored is a bcrypt hash of password of at least the DB's cost.
func (db *DB) keepHash(stored, password string) bool {
	if stored == "" {
		return false
	}
	cost, err := bcrypt.Cost([]byte(stored))
	if err != nil || cost < db.BcryptCost || cost > provision.MaxBcryptCost {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(stored), []byte(password)) == nil
}

// storedHashes returns username → password hash for the users of tenant.
func (db *DB) storedHashes(ctx context.Context, tenant callbridge.TenantID) (map[string]string, error) {
	rows, err := db.SQL.QueryContext(ctx, db.q("SELECT username, password_hash FROM users WHERE tenant = ?"), string(tenant))
	if err != nil {
		return nil, fmt.Errorf("provision: read users: %w", err)
	}
	defer rows.Close()
	out := make(map[string]string)
	for rows.Next() {
		var username, hash string
		if err := rows.Scan(&username, &hash); err != nil {
			return nil, fmt.Errorf("provision: read users: %w", err)
		}
		out[username] = hash
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("provision: read users: %w", err)
	}
	return out, nil
}

// writer runs the statements of one Provision transaction and keeps the first error; after
// an error every further call does nothing.
type writer struct {
	ctx context.Context
	tx  *sql.Tx
	db  *DB
	err error
}

func (w *writer) exec(what string, query string, args ...any) {
	if w.err != nil {
		return
	}
	if _, err := w.tx.ExecContext(w.ctx, w.db.q(query), args...); err != nil {
		w.err = fmt.Errorf("provision: %s: %w", what, err)
	}
}

// lookup scans the first row of query into dest and reports whether there was one.
func (w *writer) lookup(what string, dest *string, query string, args ...any) bool {
	if w.err != nil {
		return false
	}
	err := w.tx.QueryRowContext(w.ctx, w.db.q(query), args...).Scan(dest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false
	case err != nil:
		w.err = fmt.Errorf("provision: %s: %w", what, err)
		return false
	}
	return true
}

// tenant upserts t's row and deletes its lists.
func (w *writer) tenant(t callbridge.TenantConfig) {
	id := string(t.ID)
	w.exec("tenant "+id, `INSERT INTO tenants (id, name, wrap_up_seconds) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, wrap_up_seconds = excluded.wrap_up_seconds`,
		id, t.Name, t.WrapUpSeconds)
	w.exec("tenant "+id, "DELETE FROM tenant_dids WHERE tenant = ?", id)
	w.exec("tenant "+id, "DELETE FROM tenant_attached_data_keys WHERE tenant = ?", id)
	w.exec("tenant "+id, "DELETE FROM tenant_reason_codes WHERE tenant = ?", id)
}

// lists inserts t's DIDs, attached data keys and reason codes, refusing a DID that another
// tenant (not in the document: those lost their DIDs in tenant) still owns.
func (w *writer) lists(t callbridge.TenantConfig) {
	id := string(t.ID)
	for i, did := range t.DIDs {
		var owner string
		if w.lookup("DID "+did, &owner, "SELECT tenant FROM tenant_dids WHERE did = ?", did) {
			w.err = callbridge.Errorf(callbridge.EInvalid,
				"provisioning: tenant %q: dids: %q belongs to tenant %q, which is not in the document", t.ID, did, owner)
			return
		}
		w.exec("DID "+did, "INSERT INTO tenant_dids (did, tenant, position) VALUES (?, ?, ?)", did, id, i)
	}
	for i, key := range t.AttachedData {
		w.exec("tenant "+id, "INSERT INTO tenant_attached_data_keys (tenant, name, position) VALUES (?, ?, ?)", id, key, i)
	}
	for i, code := range t.ReasonCodes {
		w.exec("tenant "+id, "INSERT INTO tenant_reason_codes (tenant, code, position) VALUES (?, ?, ?)", id, code, i)
	}
}

// queues upserts t's queues.
func (w *writer) queues(t callbridge.TenantConfig) {
	for _, q := range t.Queues {
		var wrap any
		if q.WrapUpSeconds != nil {
			wrap = *q.WrapUpSeconds
		}
		w.exec(fmt.Sprintf("queue %s/%s", t.ID, q.Name), `INSERT INTO queues (tenant, name, wrap_up_seconds) VALUES (?, ?, ?)
			ON CONFLICT (tenant, name) DO UPDATE SET wrap_up_seconds = excluded.wrap_up_seconds`,
			string(t.ID), string(q.Name), wrap)
	}
}

// users upserts t's users and replaces their queues. Devices of the document's users are
// released first, so two users of the document may swap devices; a device still held after
// that belongs to a user outside the document, which is refused.
func (w *writer) users(t callbridge.TenantConfig, hashes map[userKey]string) {
	id := string(t.ID)
	for _, u := range t.Users {
		w.exec("user "+id+"/"+u.Username, "UPDATE users SET device = NULL WHERE tenant = ? AND username = ?", id, u.Username)
	}
	for _, u := range t.Users {
		what := "user " + id + "/" + u.Username
		var device any
		if u.Device != "" {
			device = string(u.Device)
			var holder string
			if w.lookup(what, &holder, "SELECT username FROM users WHERE tenant = ? AND device = ?", id, device) {
				w.err = callbridge.Errorf(callbridge.EInvalid,
					"provisioning: tenant %q: user %q: device: %q is the device of user %q, who is not in the document",
					t.ID, u.Username, u.Device, holder)
				return
			}
		}
		w.exec(what, `INSERT INTO users (tenant, username, password_hash, role, name, device, interface)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, username) DO UPDATE SET password_hash = excluded.password_hash,
				role = excluded.role, name = excluded.name, device = excluded.device, interface = excluded.interface`,
			id, u.Username, hashes[userKey{t.ID, u.Username}], string(u.Role), u.Name, device, u.Interface)
		w.exec(what, "DELETE FROM user_queues WHERE tenant = ? AND username = ?", id, u.Username)
		for i, q := range u.Queues {
			w.exec(what, "INSERT INTO user_queues (tenant, username, queue, position) VALUES (?, ?, ?, ?)", id, u.Username, string(q), i)
		}
	}
}
