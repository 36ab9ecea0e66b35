package provision

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/callbridge/callbridge"
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
// callbridge.RoleAgent. p itself is not modified (its slices are not shared with the copy's
// tenants and users).
func WithDefaults(p callbridge.Provisioning) callbridge.Provisioning {
	out := callbridge.Provisioning{Tenants: slices.Clone(p.Tenants)}
	for i := range out.Tenants {
		t := &out.Tenants[i]
		t.Users = slices.Clone(t.Users)
		for j := range t.Users {
			if t.Users[j].Role == "" {
				t.Users[j].Role = callbridge.RoleAgent
			}
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
//   - wrap_up_seconds of a tenant or queue is between 0 and MaxWrapUpSeconds.
func Validate(p callbridge.Provisioning) error {
	var v validator
	tenantIDs := make(map[callbridge.TenantID]bool)
	didOwner := make(map[string]callbridge.TenantID)
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
			if owner, ok := didOwner[did]; ok && owner != t.ID {
				v.addf("%s: %q already belongs to tenant %q", field, did, owner)
				return
			}
			didOwner[did] = t.ID
		})
		v.list(where+": attached_data", t.AttachedData, v.token)
		v.list(where+": reason_codes", t.ReasonCodes, v.token)

		queues := make(map[callbridge.QueueName]bool)
		for j, q := range t.Queues {
			qwhere := fmt.Sprintf("%s: queues[%d]", where, j)
			if err := callbridge.CheckDialTarget(fmt.Sprintf("%s: name %q", qwhere, q.Name), string(q.Name)); err != nil {
				v.add(callbridge.ErrorMessage(err))
				continue
			}
			qwhere = fmt.Sprintf("%s: queue %q", where, q.Name)
			if queues[q.Name] {
				v.addf("%s: name: duplicate queue", qwhere)
			}
			queues[q.Name] = true
			if q.WrapUpSeconds != nil {
				v.wrapUp(qwhere+": wrap_up_seconds", *q.WrapUpSeconds)
			}
		}

		usernames := make(map[string]bool)
		deviceOwner := make(map[callbridge.DeviceID]string)
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
			v.user(uwhere, u, queues)
			if u.Device != "" {
				if owner, ok := deviceOwner[u.Device]; ok {
					v.addf("%s: device: %q is already the device of user %q", uwhere, u.Device, owner)
				} else {
					deviceOwner[u.Device] = u.Username
				}
			}
		}
	}
	return v.err()
}

// user checks the fields of one user except the username.
func (v *validator) user(where string, u callbridge.UserConfig, queues map[callbridge.QueueName]bool) {
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
		switch {
		case seen[q]:
			v.addf("%s: queues: %q is listed twice", where, q)
		case !queues[q]:
			v.addf("%s: queues: %q is not a queue of the tenant", where, q)
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
