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
// The sites of p are upserted with their switches (a p without sites has the one implicit
// site callbridge.DefaultSite: UTC, no switches); a stored site p does not have is deleted once
// no user or queue is at it, and kept otherwise (a user of a tenant not in p, or a queue p
// does not list, is still there), like the tenants p does not list. For each tenant of p its DIDs,
// attached data keys and reason codes are replaced by p's, and for each user of p the user's
// queues and site. The users of a tenant of p that p does not list are
// deleted, and their sessions with them (they can no longer log in, and their tokens stop
// working). Tenants and queues that are not in p are left alone. A user whose clear password
// still matches the stored hash keeps that hash (unless the hash's cost is not the DB's bcrypt
// cost), so provisioning the same document again changes nothing. A tenant's Demo mark is
// stored with it (see DropDemo).
//
// Every stored hash has the DB's bcrypt cost, so that every login costs the same (see
// http's login): a password_hash of another cost is refused.
//
// Errors: a *callbridge.Error with code invalid for a bad document, for a password_hash of
// another cost, or for a DID that belongs to a tenant not in p; with code conflict for a demo
// tenant whose id is a stored tenant that is not a demo; in those cases nothing is changed.
// Otherwise a wrapped database error or ctx's error, also with nothing changed.
func (db *DB) Provision(ctx context.Context, p callbridge.Provisioning) error {
	p = provision.WithDefaults(p)
	if err := provision.Validate(p); err != nil {
		return err
	}
	if err := db.checkHashCosts(p); err != nil {
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
	w.sites(p)
	users := 0
	for _, t := range p.Tenants {
		w.lists(t)
		w.queues(t)
		w.dropUsers(t)
		users += len(t.Users)
	}
	// Release every device of the document's users before any is taken, so that users may
	// swap devices (also between tenants and sites).
	for _, t := range p.Tenants {
		for _, u := range t.Users {
			w.exec("user "+string(t.ID)+"/"+u.Username, "UPDATE users SET device = NULL WHERE tenant = ? AND username = ?", string(t.ID), u.Username)
		}
	}
	for _, t := range p.Tenants {
		w.users(t, hashes)
	}
	w.pruneSites(p)
	if w.err != nil {
		return w.err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("provision: commit: %w", err)
	}
	db.log().Info("store: provisioned", "tenants", len(p.Tenants), "users", users, "passwords_hashed", hashed)
	if len(w.dropped) > 0 {
		db.log().Info("store: users not in the document removed", "users", w.dropped)
	}
	if len(w.keptSites) > 0 {
		db.log().Warn("store: sites not in the document kept: users or queues not in the document are still there", "sites", w.keptSites)
	}
	return nil
}

// checkHashCosts refuses a password_hash whose bcrypt cost is not the DB's.
func (db *DB) checkHashCosts(p callbridge.Provisioning) error {
	for _, t := range p.Tenants {
		for _, u := range t.Users {
			if u.PasswordHash == "" {
				continue
			}
			if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil && cost != db.BcryptCost {
				return callbridge.Errorf(callbridge.EInvalid,
					"provisioning: tenant %q: user %q: password_hash: bcrypt cost %d, but this store hashes at cost %d "+
						"(so that every login costs the same); give a cost-%d hash or the clear password",
					t.ID, u.Username, cost, db.BcryptCost, db.BcryptCost)
			}
		}
	}
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

// keepHash reports whether stored is a bcrypt hash of password of the DB's cost.
func (db *DB) keepHash(stored, password string) bool {
	if stored == "" {
		return false
	}
	cost, err := bcrypt.Cost([]byte(stored))
	if err != nil || cost != db.BcryptCost {
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
	// dropped lists the users deleted because the document no longer has them ("tenant/user").
	dropped []string
	// keptSites lists the sites the document does not have that are kept (still in use).
	keptSites []string
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

// tenant upserts t's row (with its demo mark) and deletes its lists. A demo tenant does not
// replace a stored tenant that is not a demo.
func (w *writer) tenant(t callbridge.TenantConfig) {
	id := string(t.ID)
	demo := 0
	if t.Demo {
		demo = 1
		var stored string
		if w.lookup("tenant "+id, &stored, "SELECT id FROM tenants WHERE id = ? AND demo = 0", id) {
			w.err = callbridge.Errorf(callbridge.EConflict,
				"provisioning: the demo tenant %q would replace the stored tenant %q, which is not a demo", t.ID, stored)
			return
		}
	}
	w.exec("tenant "+id, `INSERT INTO tenants (id, name, wrap_up_seconds, demo) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, wrap_up_seconds = excluded.wrap_up_seconds, demo = excluded.demo`,
		id, t.Name, t.WrapUpSeconds, demo)
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

// queues upserts t's queues (p has its defaults: every queue has its site).
func (w *writer) queues(t callbridge.TenantConfig) {
	for _, q := range t.Queues {
		var wrap any
		if q.WrapUpSeconds != nil {
			wrap = *q.WrapUpSeconds
		}
		w.exec(fmt.Sprintf("queue %s/%s", t.ID, q.Name), `INSERT INTO queues (tenant, name, wrap_up_seconds, site) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant, name) DO UPDATE SET wrap_up_seconds = excluded.wrap_up_seconds, site = excluded.site`,
			string(t.ID), string(q.Name), wrap, string(q.Site))
	}
}

// sites upserts p's sites — the implicit callbridge.DefaultSite (UTC, no switches) when p
// has none — and replaces their switches.
func (w *writer) sites(p callbridge.Provisioning) {
	for _, s := range p.Directory().SiteList() {
		id := string(s.ID)
		w.exec("site "+id, `INSERT INTO sites (id, name, time_zone) VALUES (?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone`, id, s.Name, s.TimeZone)
		w.exec("site "+id, "DELETE FROM site_switches WHERE site = ?", id)
		for i, sw := range s.Switches {
			w.exec("site "+id, "INSERT INTO site_switches (site, position, pbx, ari) VALUES (?, ?, ?, ?)", id, i, sw.PBX, sw.ARI)
		}
	}
}

// pruneSites deletes the stored sites that p does not have and that no user or queue is at
// any more (once p's users and queues are written); a site p does not have that a user of
// a tenant not in p, or a queue p does not list, is still at stays as it was, and is logged.
func (w *writer) pruneSites(p callbridge.Provisioning) {
	if w.err != nil {
		return
	}
	var ids []any
	marks := ""
	for i, s := range p.Directory().SiteList() {
		if i > 0 {
			marks += ", "
		}
		marks += "?"
		ids = append(ids, string(s.ID))
	}
	w.exec("sites", `DELETE FROM sites WHERE id NOT IN (`+marks+`)
		AND NOT EXISTS (SELECT 1 FROM users WHERE users.site = sites.id)
		AND NOT EXISTS (SELECT 1 FROM queues WHERE queues.site = sites.id)`, ids...)
	if w.err != nil {
		return
	}
	rows, err := w.tx.QueryContext(w.ctx, w.db.q("SELECT id FROM sites WHERE id NOT IN ("+marks+") ORDER BY id"), ids...)
	if err != nil {
		w.err = fmt.Errorf("provision: sites: %w", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			w.err = fmt.Errorf("provision: sites: %w", err)
			return
		}
		w.keptSites = append(w.keptSites, id)
	}
	if err := rows.Err(); err != nil {
		w.err = fmt.Errorf("provision: sites: %w", err)
	}
}

// dropUsers deletes the users of tenant t that t no longer lists; their queues and sessions
// go with them (ON DELETE CASCADE).
func (w *writer) dropUsers(t callbridge.TenantConfig) {
	if w.err != nil {
		return
	}
	id := string(t.ID)
	keep := make(map[string]bool, len(t.Users))
	for _, u := range t.Users {
		keep[u.Username] = true
	}
	rows, err := w.tx.QueryContext(w.ctx, w.db.q("SELECT username FROM users WHERE tenant = ? ORDER BY username"), id)
	if err != nil {
		w.err = fmt.Errorf("provision: tenant %s: read users: %w", id, err)
		return
	}
	var drop []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			w.err = fmt.Errorf("provision: tenant %s: read users: %w", id, err)
			return
		}
		if !keep[name] {
			drop = append(drop, name)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		w.err = fmt.Errorf("provision: tenant %s: read users: %w", id, err)
		return
	}
	for _, name := range drop {
		w.exec("user "+id+"/"+name, "DELETE FROM users WHERE tenant = ? AND username = ?", id, name)
		w.dropped = append(w.dropped, id+"/"+name)
	}
}

// users upserts t's users (p has its defaults: site filled in where there is one) and
// replaces their queues. The document's users have released their devices (Provision), and
// users of t outside the document are gone (dropUsers); a device still held at the user's
// site in t is refused all the same. (Validate checks devices across the document's
// tenants; tenants outside it are left alone, as before sites.)
func (w *writer) users(t callbridge.TenantConfig, hashes map[userKey]string) {
	id := string(t.ID)
	for _, u := range t.Users {
		what := "user " + id + "/" + u.Username
		var device any
		if u.Device != "" {
			device = string(u.Device)
			var holder string
			if w.lookup(what, &holder, "SELECT username FROM users WHERE tenant = ? AND site = ? AND device = ?", id, string(u.Site), device) {
				w.err = callbridge.Errorf(callbridge.EInvalid,
					"provisioning: tenant %q: user %q: device: %q is the device of user %q, who is not in the document",
					t.ID, u.Username, u.Device, holder)
				return
			}
		}
		w.exec(what, `INSERT INTO users (tenant, username, password_hash, role, name, device, interface, site)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, username) DO UPDATE SET password_hash = excluded.password_hash,
				role = excluded.role, name = excluded.name, device = excluded.device, interface = excluded.interface,
				site = excluded.site`,
			id, u.Username, hashes[userKey{t.ID, u.Username}], string(u.Role), u.Name, device, u.Interface, string(u.Site))
		w.exec(what, "DELETE FROM user_queues WHERE tenant = ? AND username = ?", id, u.Username)
		for i, q := range u.Queues {
			w.exec(what, "INSERT INTO user_queues (tenant, username, queue, position) VALUES (?, ?, ?, ?)", id, u.Username, string(q), i)
		}
	}
}
