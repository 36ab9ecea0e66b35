package callbridge

import "context"

// Provisioning is the configuration document loaded by `serve --provision FILE` (YAML) or
// built by the demo seed: the sites with their switches, and the tenants with their DIDs,
// queues, users and agents.
//
// A document without Sites has one implicit site, DefaultSite (UTC; its switch is the node's
// --pbx), and every user and queue is there: every document written before sites existed
// means what it meant. With Sites, a tenant spans sites: each of its users has a home site (the
// site of their device) and each queue a site (the site of the switch that runs it).
type Provisioning struct {
	Sites   []Site         `yaml:"sites,omitempty" json:"sites,omitempty"`
	Tenants []TenantConfig `yaml:"tenants" json:"tenants"`
}

// TenantConfig is one tenant.
type TenantConfig struct {
	ID   TenantID `yaml:"id" json:"id"`
	Name string   `yaml:"name" json:"name"`
	// DIDs (DNIS) on the shared switch that belong to this tenant ("venues").
	DIDs []string `yaml:"dids" json:"dids"`
	// AttachedData lists the switch variables that count as attached data (Asterisk channel
	// variables from manager.conf channelvars, e.g. IVR_ACCOUNT). Empty: every variable the
	// driver reports except its own CTI_* bookkeeping.
	AttachedData []string `yaml:"attached_data" json:"attached_data"`
	// WrapUpSeconds is the default after-call work time; 0 means no wrap-up.
	WrapUpSeconds int `yaml:"wrap_up_seconds" json:"wrap_up_seconds"`
	// ReasonCodes allowed for not_ready. callbridge's own (desktop_lost, …) are always allowed.
	ReasonCodes []string      `yaml:"reason_codes" json:"reason_codes"`
	Queues      []QueueConfig `yaml:"queues" json:"queues"`
	Users       []UserConfig  `yaml:"users" json:"users"`
	// Demo marks the demo tenant of the embedded default (provision.Demo). A run that is not
	// the demo removes demo tenants, with their users and sessions, before it provisions
	// (Store.DropDemo). Provisioning files cannot set it.
	Demo bool `yaml:"-" json:"-"`
}

// QueueConfig is one ACD queue of a tenant.
type QueueConfig struct {
	Name QueueName `yaml:"name" json:"name"`
	// Site is the site whose switch runs the queue. Empty: the only site (required when the
	// provisioning has several).
	Site SiteID `yaml:"site,omitempty" json:"site,omitempty"`
	// WrapUpSeconds overrides the tenant's default for calls from this queue; nil = default.
	WrapUpSeconds *int `yaml:"wrap_up_seconds" json:"wrap_up_seconds,omitempty"`
}

// UserConfig is one user; users with a Device are agents.
type UserConfig struct {
	Username string `yaml:"username" json:"username"`
	// Password in clear (hashed with bcrypt when loaded) or PasswordHash (bcrypt) — one of them.
	Password     string `yaml:"password" json:"-"`
	PasswordHash string `yaml:"password_hash" json:"-"`
	Role         Role   `yaml:"role" json:"role"`
	Name         string `yaml:"name" json:"name"`
	// Site is the user's home site: the site of their Device, whose node runs their agent.
	// Empty: the only site; with several sites it is required for an agent and optional for
	// a user without a device (who then has no home site: a supervisor or admin of the
	// central nodes).
	Site SiteID `yaml:"site,omitempty" json:"site,omitempty"`
	// Device is the agent's extension on the switch of their site ("1001"); unique per site.
	Device DeviceID `yaml:"device" json:"device,omitempty"`
	// Interface is the queue-member interface on the switch ("PJSIP/1001",
	// "Local/2001@globex-agents/n"); empty: the driver's default for Device.
	Interface string `yaml:"interface" json:"interface,omitempty"`
	// Queues the agent is logged on to when they log in.
	Queues []QueueName `yaml:"queues" json:"queues,omitempty"`
}

// User is a stored user (for login).
type User struct {
	Tenant       TenantID
	Username     string
	PasswordHash string
	Role         Role
	Name         string
}

// Directory is what the engines need from configuration: the sites, and every tenant with
// its agents and queues. Passwords are not in it. An engine runs one site: give it
// ForSite(site). Empty Sites means the one implicit site DefaultSite (see Provisioning and
// SiteList).
type Directory struct {
	Sites   []Site
	Tenants []TenantConfig
}

// Store keeps configuration and history. Implementations: sqlite (embedded default),
// postgres (production).
type Store interface {
	// Provision upserts every site, tenant, queue and user of p in one transaction. The users
	// of a tenant of p that p no longer lists are deleted, with their sessions; tenants
	// missing from p are left alone, and so are sites missing from p while a user or queue is
	// at them (others are deleted). Errors: EInvalid for a bad document; EConflict when a
	// demo tenant of p would replace a tenant that is not a demo.
	Provision(ctx context.Context, p Provisioning) error
	// DropDemo deletes every tenant marked Demo, with its users, queues and sessions, and
	// returns their ids.
	DropDemo(ctx context.Context) ([]TenantID, error)
	// Directory returns the sites and every tenant with queues and users (without password
	// hashes).
	Directory(ctx context.Context) (Directory, error)
	// FindUsers returns the users named username in every tenant (usually one), or none.
	FindUsers(ctx context.Context, username string) ([]User, error)
	// Close closes the store.
	Close() error
}

// EventLog is the durable, ordered log of domain events (NATS JetStream).
type EventLog interface {
	// Append stores ev (and its copies for each audience agent) and returns the sequence
	// number of the last copy written. Events with an empty Tenant are refused (EInvalid).
	Append(ctx context.Context, ev Event) (uint64, error)
	// LastSeq returns the sequence of the newest event in the log (0 when empty).
	LastSeq(ctx context.Context) (uint64, error)
	// Subscribe delivers, in order, every event for filter with a sequence greater than
	// afterSeq, then live events, until ctx ends or the Subscription is stopped. fn is called
	// from one goroutine; Seq is set on every WireEvent.
	Subscribe(ctx context.Context, filter Filter, afterSeq uint64, fn func(WireEvent)) (Subscription, error)
}

// Filter chooses what a subscriber receives: one agent's events (their calls and their
// state), or a whole tenant (supervisors, webhooks).
type Filter struct {
	Tenant TenantID
	// Agent, when set, restricts to the agent's own events; empty means the whole tenant.
	Agent AgentID
}

// Subscription is a live subscription; Stop ends it and waits for fn to return.
type Subscription interface {
	Stop()
}
