package provision

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
	"github.com/callbridge/callbridge/internal/switchurl"
)

// MaxWrapUpSeconds is the longest wrap-up time a tenant or queue may configure (one day).
const MaxWrapUpSeconds = 24 * 60 * 60

// maxPasswordBytes is bcrypt's limit: it only looks at the first 72 bytes of a password, and
// golang.org/x/crypto/bcrypt refuses longer ones.
const maxPasswordBytes = 72

// MaxBcryptCost is the highest bcrypt cost a password_hash may have: cost 16 already takes
// seconds per login on a server core, and a higher one would let one user stall logins.
const MaxBcryptCost = 16

// maxProblems is how many problems one Validate error lists before "and N more".
const maxProblems = 10

// WithDefaults returns a copy of p with defaults filled in: a user without a role gets
// callbridge.RoleAgent; a site without a time zone gets "UTC"; when p has one site (the one
// in Sites, or the implicit callbridge.DefaultSite when Sites is empty), every user and queue
// without a site gets it. p itself is not modified (its slices are not shared with the copy's
// sites, tenants, queues and users).
func WithDefaults(p callbridge.Provisioning) callbridge.Provisioning {
	out := callbridge.Provisioning{Sites: slices.Clone(p.Sites), Tenants: slices.Clone(p.Tenants)}
	for i := range out.Sites {
		if out.Sites[i].TimeZone == "" {
			out.Sites[i].TimeZone = "UTC"
		}
	}
	dir := out.Directory()
	for i := range out.Tenants {
		t := &out.Tenants[i]
		t.Queues = slices.Clone(t.Queues)
		for j := range t.Queues {
			t.Queues[j].Site = dir.QueueSite(t.Queues[j])
		}
		t.Users = slices.Clone(t.Users)
		for j := range t.Users {
			if t.Users[j].Role == "" {
				t.Users[j].Role = callbridge.RoleAgent
			}
			t.Users[j].Site = dir.HomeSite(t.Users[j])
		}
	}
	return out
}

// Validate checks p without changing anything and returns nil or a *callbridge.Error with code
// EInvalid listing up to ten problems, each naming the tenant, user or queue and the field
// (the YAML field names of directory.go), e.g.
// `invalid: provisioning: tenant "acme": user "1001": queues: "sales" is not a queue of the tenant`.
//
// The rules:
//   - tenant ids and usernames are tokens (callbridge.ValidToken: 1-64 of [A-Za-z0-9_-]);
//     reason codes and attached data keys too;
//   - no two tenants share an id, and within a tenant no two queues share a name, no two users
//     a username, no two users a device; no list (dids, attached_data, reason_codes, a user's
//     queues) repeats an entry;
//   - a DID (1-64 of [A-Za-z0-9+*#_.@-], callbridge.CheckDialTarget) belongs to one tenant;
//   - a queue name passes callbridge.CheckDialTarget (so "support@default" is allowed);
//   - every user has exactly one of password (at most 72 bytes, bcrypt's limit) and
//     password_hash (a bcrypt hash of cost at most MaxBcryptCost);
//   - role is empty (meaning agent), agent, supervisor or admin;
//   - the queues a user lists are queues of the same tenant;
//   - names, devices and interfaces contain no CR, LF or NUL (callbridge.CheckSwitchValue);
//   - wrap_up_seconds of a tenant or queue is between 0 and MaxWrapUpSeconds;
//   - a reason code is not callbridge.ReasonWrapUp (callbridge's own pause reason), and no
//     two DIDs are equal but for a leading "+" (the engine compares them without it);
//
// and for sites (see checkSites):
//   - site ids are tokens and unique; names contain no CR, LF or NUL; time_zone is empty
//     (UTC) or an IANA name callbridge.LoadTimeZone knows ("Local" is refused);
//   - every switch's pbx passes switchurl.Kind (what `serve --pbx` takes); ari, when
//     given, passes switchurl.CheckARI and belongs to an ami:// switch; a site lists a pbx
//     once, and a switch URL (other than "sim") belongs to one site;
//   - the site of a user or queue is a site of the document (without sites: the implicit
//     site "default"), and, with several sites, is given for every queue and every user
//     with a device; a site of the document that has users or queues has switches;
//   - a device belongs to one user per site, across tenants (the switch is shared), and a
//     queue name to one tenant per site; the queues a user with a device lists are at
//     their site.
func Validate(p callbridge.Provisioning) error {
	var v validator
	dir := p.Directory()
	sites := v.sites(p.Sites)
	tenantIDs := make(map[callbridge.TenantID]bool)
	didOwner := make(map[string]callbridge.TenantID)
	// Per site: device → "tenant/user" holding it, queue name → tenant.
	type siteKey struct {
		site callbridge.SiteID
		name string
	}
	deviceOwner := make(map[siteKey]callbridge.AgentKey)
	queueOwner := make(map[siteKey]callbridge.TenantID)
	for i, t := range p.Tenants {
		where := fmt.Sprintf("tenants[%d]", i)
		if callbridge.ValidToken(string(t.ID)) {
			where = fmt.Sprintf("tenant %q", t.ID)
			if tenantIDs[t.ID] {
				v.addf("%s: id: duplicate tenant", where)
			}
			tenantIDs[t.ID] = true
		} else {
			v.addf("%s: id: %q is not a token (1-64 characters of A-Z a-z 0-9 _ -)", where, t.ID)
		}
		v.switchValue(where+": name", t.Name)
		v.wrapUp(where+": wrap_up_seconds", t.WrapUpSeconds)

		v.list(where+": dids", t.DIDs, func(field, did string) {
			if err := callbridge.CheckDialTarget(fmt.Sprintf("%s %q", field, did), did); err != nil {
				v.add(callbridge.ErrorMessage(err))
				return
			}
			norm := strings.TrimPrefix(did, "+")
			if norm == "" {
				v.addf("%s: %q is not a number", field, did)
				return
			}
			if owner, ok := didOwner[norm]; ok {
				if owner != t.ID {
					v.addf("%s: %q already belongs to tenant %q", field, did, owner)
				} else { // exact repeats are reported by list
					v.addf("%s: %q is listed twice (with and without +)", field, did)
				}
				return
			}
			didOwner[norm] = t.ID
		})
		v.list(where+": attached_data", t.AttachedData, v.token)
		v.list(where+": reason_codes", t.ReasonCodes, func(field, code string) {
			v.token(field, code)
			if code == callbridge.ReasonWrapUp {
				v.addf("%s: %q is callbridge's own pause reason during wrap-up", field, code)
			}
		})

		// queues: name → site.
		queues := make(map[callbridge.QueueName]callbridge.SiteID)
		for j, q := range t.Queues {
			qwhere := fmt.Sprintf("%s: queues[%d]", where, j)
			if err := callbridge.CheckDialTarget(fmt.Sprintf("%s: name %q", qwhere, q.Name), string(q.Name)); err != nil {
				v.add(callbridge.ErrorMessage(err))
				continue
			}
			qwhere = fmt.Sprintf("%s: queue %q", where, q.Name)
			site := dir.QueueSite(q)
			if _, dup := queues[q.Name]; dup {
				v.addf("%s: name: duplicate queue", qwhere)
			} else if v.placed(qwhere, site, q.Site, true, sites) {
				k := siteKey{site, string(q.Name)}
				if owner, ok := queueOwner[k]; ok && owner != t.ID {
					v.addf("%s: name: already a queue of tenant %q%s (the switch is shared)", qwhere, owner, atSite(sites, site))
				} else {
					queueOwner[k] = t.ID
				}
			}
			queues[q.Name] = site
			if q.WrapUpSeconds != nil {
				v.wrapUp(qwhere+": wrap_up_seconds", *q.WrapUpSeconds)
			}
		}

		usernames := make(map[string]bool)
		for j, u := range t.Users {
			uwhere := fmt.Sprintf("%s: users[%d]", where, j)
			if callbridge.ValidToken(u.Username) {
				uwhere = fmt.Sprintf("%s: user %q", where, u.Username)
				if usernames[u.Username] {
					v.addf("%s: username: duplicate user", uwhere)
				}
				usernames[u.Username] = true
			} else {
				v.addf("%s: username: %q is not a token (1-64 characters of A-Z a-z 0-9 _ -)", uwhere, u.Username)
			}
			site := dir.HomeSite(u)
			placed := v.placed(uwhere, site, u.Site, u.Device != "", sites)
			v.user(uwhere, u, queues, site)
			if u.Device != "" && placed {
				k := siteKey{site, string(u.Device)}
				switch owner, ok := deviceOwner[k]; {
				case !ok:
					deviceOwner[k] = callbridge.AgentKey{Tenant: t.ID, Agent: callbridge.AgentID(u.Username)}
				case owner.Tenant == t.ID:
					v.addf("%s: device: %q is already the device of user %q%s", uwhere, u.Device, owner.Agent, atSite(sites, site))
				default:
					v.addf("%s: device: %q is already the device of user %q of tenant %q%s (the switch is shared)",
						uwhere, u.Device, owner.Agent, owner.Tenant, atSite(sites, site))
				}
			}
		}
	}
	return v.err()
}

// siteInfo is what Validate needs to know of a site of the document.
type siteInfo struct {
	hasSwitches bool
	explicit    bool // false for the implicit callbridge.DefaultSite
}

// sites checks the document's sites and returns them by id (the implicit DefaultSite when
// there are none). Sites whose id is not a token are left out of the result.
func (v *validator) sites(list []callbridge.Site) map[callbridge.SiteID]siteInfo {
	out := make(map[callbridge.SiteID]siteInfo)
	if len(list) == 0 {
		out[callbridge.DefaultSite] = siteInfo{}
		return out
	}
	urlSite := make(map[string]callbridge.SiteID)
	for i, s := range list {
		where := fmt.Sprintf("sites[%d]", i)
		if callbridge.ValidToken(string(s.ID)) {
			where = fmt.Sprintf("site %q", s.ID)
			if _, dup := out[s.ID]; dup {
				v.addf("%s: id: duplicate site", where)
			}
			out[s.ID] = siteInfo{hasSwitches: len(s.Switches) > 0, explicit: true}
		} else {
			v.addf("%s: id: %q is not a token (1-64 characters of A-Z a-z 0-9 _ -)", where, s.ID)
		}
		v.switchValue(where+": name", s.Name)
		if _, err := callbridge.LoadTimeZone(s.TimeZone); err != nil {
			v.addf("%s: time_zone: %s", where, callbridge.ErrorMessage(err))
		}
		pbxs := make(map[string]bool)
		for j, sw := range s.Switches {
			swhere := fmt.Sprintf("%s: switches[%d]", where, j)
			kind, err := switchurl.Kind(swhere+": pbx", sw.PBX)
			if err != nil {
				v.add(err.Error())
				continue
			}
			if pbxs[sw.PBX] {
				v.addf("%s: pbx: %s is listed twice", swhere, switchurl.Redact(sw.PBX))
			}
			pbxs[sw.PBX] = true
			if kind != switchurl.Sim {
				if other, ok := urlSite[sw.PBX]; ok && other != s.ID {
					v.addf("%s: pbx: %s is already a switch of site %q", swhere, switchurl.Redact(sw.PBX), other)
				}
				urlSite[sw.PBX] = s.ID
			}
			if sw.ARI == "" {
				continue
			}
			if kind != switchurl.Asterisk {
				v.addf("%s: ari: only an Asterisk switch (ami://…) has ARI", swhere)
			} else if err := switchurl.CheckARI(swhere+": ari", sw.ARI); err != nil {
				v.add(err.Error())
			}
		}
	}
	return out
}

// placed checks the site of a user or queue (at where): site is its effective site (given,
// or the document's only one), given what the document says. needed is whether it must
// have a site when the document has several. It reports whether site is a usable site.
func (v *validator) placed(where string, site, given callbridge.SiteID, needed bool, sites map[callbridge.SiteID]siteInfo) bool {
	switch info, ok := sites[site]; {
	case site == "":
		if needed {
			v.addf("%s: site: required when there are several sites", where)
		}
		return false
	case !ok:
		if len(sites) == 1 && !sites[callbridge.DefaultSite].explicit && given != "" {
			v.addf("%s: site: %q is not a site of the document (it has no sites: every user and queue is at site %q)",
				where, given, callbridge.DefaultSite)
		} else {
			v.addf("%s: site: %q is not a site of the document", where, given)
		}
		return false
	case info.explicit && !info.hasSwitches:
		v.addf("%s: site: site %q has no switches", where, site)
		return false
	}
	return true
}

// atSite is ` at site "x"` when the document has sites of its own, else "".
func atSite(sites map[callbridge.SiteID]siteInfo, site callbridge.SiteID) string {
	if !sites[site].explicit {
		return ""
	}
	return fmt.Sprintf(" at site %q", site)
}

// user checks the fields of one user except the username and site; queues are the tenant's
// queues with their sites, site is the user's home site.
func (v *validator) user(where string, u callbridge.UserConfig, queues map[callbridge.QueueName]callbridge.SiteID, site callbridge.SiteID) {
	switch {
	case u.Password == "" && u.PasswordHash == "":
		v.addf("%s: needs password or password_hash", where)
	case u.Password != "" && u.PasswordHash != "":
		v.addf("%s: has both password and password_hash; give one", where)
	case len(u.Password) > maxPasswordBytes:
		v.addf("%s: password: longer than %d bytes", where, maxPasswordBytes)
	case u.PasswordHash != "":
		if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			v.addf("%s: password_hash: not a bcrypt hash", where)
		} else if cost > MaxBcryptCost {
			v.addf("%s: password_hash: bcrypt cost %d is above %d", where, cost, MaxBcryptCost)
		}
	}
	switch u.Role {
	case "", callbridge.RoleAgent, callbridge.RoleSupervisor, callbridge.RoleAdmin:
	default:
		v.addf("%s: role: %q is not agent, supervisor or admin", where, u.Role)
	}
	v.switchValue(where+": name", u.Name)
	v.switchValue(where+": device", string(u.Device))
	v.switchValue(where+": interface", u.Interface)
	seen := make(map[callbridge.QueueName]bool)
	for _, q := range u.Queues {
		qsite, ok := queues[q]
		switch {
		case seen[q]:
			v.addf("%s: queues: %q is listed twice", where, q)
		case !ok:
			v.addf("%s: queues: %q is not a queue of the tenant", where, q)
		case u.Device != "" && site != "" && qsite != "" && qsite != site:
			v.addf("%s: queues: %q is a queue of site %q, not of the user's site %q", where, q, qsite, site)
		}
		seen[q] = true
	}
}

// validator collects problems.
type validator struct {
	problems []string
}

func (v *validator) add(s string) { v.problems = append(v.problems, s) }

func (v *validator) addf(format string, args ...any) { v.add(fmt.Sprintf(format, args...)) }

func (v *validator) switchValue(field, s string) {
	if err := callbridge.CheckSwitchValue(field, s); err != nil {
		v.add(callbridge.ErrorMessage(err))
	}
}

func (v *validator) wrapUp(field string, n int) {
	if n < 0 || n > MaxWrapUpSeconds {
		v.addf("%s: %d is not between 0 and %d", field, n, MaxWrapUpSeconds)
	}
}

func (v *validator) token(field, s string) {
	if !callbridge.ValidToken(s) {
		v.addf("%s: %q is not a token (1-64 characters of A-Z a-z 0-9 _ -)", field, s)
	}
}

// list calls check for each entry of a set-like list and reports entries given twice.
func (v *validator) list(field string, entries []string, check func(field, s string)) {
	seen := make(map[string]bool, len(entries))
	for _, s := range entries {
		if seen[s] {
			v.addf("%s: %q is listed twice", field, s)
			continue
		}
		seen[s] = true
		check(field, s)
	}
}

func (v *validator) err() error {
	if len(v.problems) == 0 {
		return nil
	}
	shown := v.problems
	more := ""
	if len(shown) > maxProblems {
		more = fmt.Sprintf("; and %d more", len(shown)-maxProblems)
		shown = shown[:maxProblems]
	}
	return callbridge.Errorf(callbridge.EInvalid, "provisioning: %s%s", strings.Join(shown, "; "), more)
}
