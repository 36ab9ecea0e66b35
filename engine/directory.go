package engine

import (
	"strings"

	"github.com/callbridge/callbridge"
)

// directory is the engine's index of a callbridge.Directory.
type directory struct {
	tenants map[callbridge.TenantID]*tenantInfo
	order   []callbridge.TenantID // directory order
	dids    map[string]callbridge.TenantID
	devices map[callbridge.DeviceID]callbridge.AgentKey
	queues  map[callbridge.QueueName]callbridge.TenantID
}

// tenantInfo is one tenant's configuration, indexed.
type tenantInfo struct {
	id      callbridge.TenantID
	cfg     callbridge.TenantConfig
	users   map[string]callbridge.UserConfig // every user, by user name
	queues  map[callbridge.QueueName]callbridge.QueueConfig
	reasons map[string]bool
	keys    map[string]bool // AttachedData keys; empty: every key except CTI_*
}

// CheckDirectory reports the first problem that New would refuse in d, as an *callbridge.Error
// with code invalid, or nil. Rules: tenant ids are tokens (callbridge.ValidToken) and unique;
// DIDs are unique on the site; queue names are non-empty, free of CR/LF/NUL and unique on the
// site (the switch is shared); reason codes are non-empty, free of CR/LF/NUL and not wrap_up;
// wrap-up seconds are not negative; an agent (a user with a Device) has a token user name
// unique in its tenant, a device unique on the site, lists only its tenant's queues, and has a
// Name and Interface free of CR/LF/NUL.
func CheckDirectory(d callbridge.Directory) error {
	_, err := buildDirectory(d)
	return err
}

// buildDirectory indexes d. Entries that break a rule of CheckDirectory are left out (the
// first of two duplicates wins); the first problem found is returned with the index.
func buildDirectory(d callbridge.Directory) (*directory, error) {
	dir := &directory{
		tenants: map[callbridge.TenantID]*tenantInfo{},
		dids:    map[string]callbridge.TenantID{},
		devices: map[callbridge.DeviceID]callbridge.AgentKey{},
		queues:  map[callbridge.QueueName]callbridge.TenantID{},
	}
	var first error
	bad := func(format string, args ...any) {
		if first == nil {
			first = callbridge.Errorf(callbridge.EInvalid, "directory: "+format, args...)
		}
	}
	for _, tc := range d.Tenants {
		if !callbridge.ValidToken(string(tc.ID)) {
			bad("tenant id %q is not a token of 1-64 characters [A-Za-z0-9_-]", tc.ID)
			continue
		}
		if dir.tenants[tc.ID] != nil {
			bad("tenant %q appears twice", tc.ID)
			continue
		}
		t := &tenantInfo{
			id:      tc.ID,
			cfg:     tc,
			users:   map[string]callbridge.UserConfig{},
			queues:  map[callbridge.QueueName]callbridge.QueueConfig{},
			reasons: map[string]bool{},
			keys:    map[string]bool{},
		}
		if tc.WrapUpSeconds < 0 {
			bad("tenant %q: wrap_up_seconds is negative", tc.ID)
			t.cfg.WrapUpSeconds = 0
		}
		for _, did := range tc.DIDs {
			n := normDID(did)
			if n == "" {
				bad("tenant %q: empty DID", tc.ID)
				continue
			}
			if o, ok := dir.dids[n]; ok {
				bad("DID %q belongs to tenants %q and %q", did, o, tc.ID)
				continue
			}
			dir.dids[n] = tc.ID
		}
		for _, k := range tc.AttachedData {
			if k != "" {
				t.keys[k] = true
			}
		}
		for _, r := range tc.ReasonCodes {
			if r == "" || r == callbridge.ReasonWrapUp || callbridge.CheckSwitchValue("reason code", r) != nil {
				bad("tenant %q: reason code %q is empty, reserved or contains CR, LF or NUL", tc.ID, r)
				continue
			}
			t.reasons[r] = true
		}
		for _, q := range tc.Queues {
			if q.Name == "" || callbridge.CheckSwitchValue("queue", string(q.Name)) != nil {
				bad("tenant %q: queue name %q is empty or contains CR, LF or NUL", tc.ID, q.Name)
				continue
			}
			if o, ok := dir.queues[q.Name]; ok {
				bad("queue %q belongs to tenants %q and %q", q.Name, o, tc.ID)
				continue
			}
			if q.WrapUpSeconds != nil && *q.WrapUpSeconds < 0 {
				bad("queue %q: wrap_up_seconds is negative", q.Name)
				zero := 0
				q.WrapUpSeconds = &zero
			}
			dir.queues[q.Name] = tc.ID
			t.queues[q.Name] = q
		}
		for _, u := range tc.Users {
			if _, dup := t.users[u.Username]; dup {
				bad("tenant %q: user %q appears twice", tc.ID, u.Username)
				continue
			}
			if u.Device != "" {
				switch {
				case !callbridge.ValidToken(u.Username):
					bad("tenant %q: agent user name %q is not a token", tc.ID, u.Username)
					continue
				case callbridge.CheckSwitchValue("device", string(u.Device)) != nil,
					callbridge.CheckSwitchValue("name", u.Name) != nil,
					callbridge.CheckSwitchValue("interface", u.Interface) != nil:
					bad("tenant %q: agent %q has CR, LF or NUL in device, name or interface", tc.ID, u.Username)
					continue
				}
				if o, ok := dir.devices[u.Device]; ok {
					bad("device %q belongs to agents %s and %s/%s", u.Device, o, tc.ID, u.Username)
					continue
				}
				var qs []callbridge.QueueName
				for _, q := range u.Queues {
					if _, ok := t.queues[q]; !ok {
						bad("tenant %q: agent %q lists unknown queue %q", tc.ID, u.Username, q)
						continue
					}
					qs = append(qs, q)
				}
				u.Queues = qs
				dir.devices[u.Device] = callbridge.AgentKey{Tenant: tc.ID, Agent: callbridge.AgentID(u.Username)}
			}
			t.users[u.Username] = u
		}
		dir.tenants[tc.ID] = t
		dir.order = append(dir.order, tc.ID)
	}
	return dir, first
}

// normDID is the form DIDs and DNIS are compared in: without a leading "+".
func normDID(s string) string { return strings.TrimPrefix(strings.TrimSpace(s), "+") }

// keep reports whether attached-data key k of a switch is kept for tenant t (nil: unknown).
func (t *tenantInfo) keep(k string) bool {
	if k == "" {
		return false
	}
	if t != nil && len(t.keys) > 0 {
		return t.keys[k]
	}
	return !strings.HasPrefix(k, "CTI_")
}

// reasonAllowed reports whether r may be requested as a not_ready reason.
func (t *tenantInfo) reasonAllowed(r string) bool {
	switch r {
	case callbridge.ReasonDesktopLost, callbridge.ReasonDeviceUnavailable:
		return true
	}
	return t.reasons[r]
}

// wrapUpSeconds is the wrap-up time of a call from queue q (may be empty).
func (t *tenantInfo) wrapUpSeconds(q callbridge.QueueName) int {
	if qc, ok := t.queues[q]; ok && qc.WrapUpSeconds != nil {
		return *qc.WrapUpSeconds
	}
	return t.cfg.WrapUpSeconds
}
