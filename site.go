package callbridge

import (
	"strings"
	"time"
	_ "time/tzdata" // time zones of sites work on hosts without a zoneinfo database, too
)

// SiteID names a site: a call centre with its own switch(es) and callbridge node(s), e.g.
// "msk". It is a token (ValidToken), used in NATS subjects and flags (--site).
type SiteID string

// DefaultSite is the one implicit site of a provisioning without sites: UTC, and its switch
// is the node's --pbx.
const DefaultSite SiteID = "default"

// Site is one site of the provisioning (YAML `sites:`).
type Site struct {
	ID   SiteID `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name"`
	// TimeZone is the IANA name of the site's time zone ("Europe/Moscow"); empty is UTC.
	// Call records carry it, and their local times and day (CallRecord.Date) are in it.
	TimeZone string `yaml:"time_zone" json:"time_zone"`
	// Switches are the site's switches, each reached by one driver of the site's node. A
	// site without switches has no users or queues.
	Switches []SwitchConfig `yaml:"switches" json:"switches"`
}

// SwitchConfig is one switch of a site: what `serve --pbx` (and --ari) take.
type SwitchConfig struct {
	// PBX is "sim" (the simulated PBX), ami://user:secret@host:5038 (Asterisk) or
	// esl://:password@host:8021 (FreeSWITCH). It holds the switch's secret, so it is not
	// serialised to JSON.
	PBX string `yaml:"pbx" json:"-"`
	// ARI is the Asterisk REST interface of an ami:// switch, for routing points
	// (ari://user:secret@host:8088/app); optional.
	ARI string `yaml:"ari,omitempty" json:"-"`
}

// LoadTimeZone returns the location of an IANA time zone name: "" and "UTC" are UTC. The
// zone database is the host's, or the one built into callbridge (time/tzdata) when the host
// has none. Errors (*Error, code invalid): "Local" (it would depend on the host), or a name
// the zone database does not know.
func LoadTimeZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, Errorf(EInvalid, `time zone "Local" depends on the host: give an IANA name such as "Europe/Moscow"`)
	}
	if CheckSwitchValue("time zone", name) != nil || len(name) > 64 || strings.HasPrefix(name, "/") {
		return nil, Errorf(EInvalid, "time zone %q is not an IANA time zone name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, Errorf(EInvalid, "time zone %q is not an IANA time zone name (such as Europe/Moscow)", name)
	}
	return loc, nil
}

// Location returns the site's time zone, for call records and business hours: UTC when
// TimeZone is empty, or not a zone LoadTimeZone knows (provisioning refuses such a site). It
// reads the zone database on every call; callers that need it often keep the result.
func (s Site) Location() *time.Location {
	loc, err := LoadTimeZone(s.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// SiteList returns the sites of d: d.Sites, or, when d has none, the implicit site
// DefaultSite (UTC, no switches: the node's --pbx).
func (d Directory) SiteList() []Site {
	if len(d.Sites) == 0 {
		return []Site{{ID: DefaultSite, TimeZone: "UTC"}}
	}
	return d.Sites
}

// Site returns the site id of d (see SiteList); ok is false for a site d does not have.
func (d Directory) Site(id SiteID) (Site, bool) {
	for _, s := range d.SiteList() {
		if s.ID == id {
			return s, true
		}
	}
	return Site{}, false
}

// onlySite is the id of d's only site, or "" when d has several.
func (d Directory) onlySite() SiteID {
	if sites := d.SiteList(); len(sites) == 1 {
		return sites[0].ID
	}
	return ""
}

// HomeSite returns the home site of user u of d: u.Site, or d's only site when u.Site is
// empty; "" when d has several sites and u names none (a user without a device).
func (d Directory) HomeSite(u UserConfig) SiteID {
	if u.Site != "" {
		return u.Site
	}
	return d.onlySite()
}

// QueueSite returns the site of queue q of d: q.Site, or d's only site when it is empty.
func (d Directory) QueueSite(q QueueConfig) SiteID {
	if q.Site != "" {
		return q.Site
	}
	return d.onlySite()
}

// SiteOf returns the home site of user agent (an agent's id is their user name) of tenant:
// the site whose node runs the agent and takes their commands and desktops. ok is false when
// d has no such user, or the user has no home site (a user without a device, in a directory
// of several sites, who names none). It scans d; HomeSites indexes every user at once.
func (d Directory) SiteOf(tenant TenantID, agent AgentID) (SiteID, bool) {
	for _, t := range d.Tenants {
		if t.ID != tenant {
			continue
		}
		for _, u := range t.Users {
			if u.Username == string(agent) {
				site := d.HomeSite(u)
				return site, site != ""
			}
		}
	}
	return "", false
}

// HomeSites returns the home site of every user of d that has one (see SiteOf), keyed by
// tenant and user name: the index the command router and the desktop gateway look agents up
// in.
func (d Directory) HomeSites() map[AgentKey]SiteID {
	out := make(map[AgentKey]SiteID)
	for _, t := range d.Tenants {
		for _, u := range t.Users {
			if site := d.HomeSite(u); site != "" {
				out[AgentKey{Tenant: t.ID, Agent: AgentID(u.Username)}] = site
			}
		}
	}
	return out
}

// ForSite returns the directory the engine of site id runs with (an engine runs one site,
// DESIGN.md §3): Sites is that site alone; every tenant of d is in it (DIDs, attached data
// keys, reason codes and wrap-up are the tenant's wherever its calls ring), with only the
// queues at the site and the users whose home site it is, each with Site filled in. Users
// without a home site are in no site's directory. The tenants' lists are shared with d, the
// Queues and Users slices are new. Errors: ENotFound when d has no site id.
func (d Directory) ForSite(id SiteID) (Directory, error) {
	site, ok := d.Site(id)
	if !ok {
		return Directory{}, Errorf(ENotFound, "directory: no site %q", id)
	}
	out := Directory{Sites: []Site{site}, Tenants: make([]TenantConfig, len(d.Tenants))}
	for i, t := range d.Tenants {
		t.Queues, t.Users = nil, nil
		for _, q := range d.Tenants[i].Queues {
			if d.QueueSite(q) == id {
				q.Site = id
				t.Queues = append(t.Queues, q)
			}
		}
		for _, u := range d.Tenants[i].Users {
			if d.HomeSite(u) == id {
				u.Site = id
				t.Users = append(t.Users, u)
			}
		}
		out.Tenants[i] = t
	}
	return out, nil
}

// Directory returns p as a directory (its sites and tenants, sharing p's slices), e.g. for
// an engine that runs from a file without a store (replay). Passwords stay in the users;
// ForSite and the store's Directory are what engines get in serve.
func (p Provisioning) Directory() Directory {
	return Directory{Sites: p.Sites, Tenants: p.Tenants}
}
