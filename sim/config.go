package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/callbridge/callbridge"
)

// DemoCallInterval is the CallInterval of the embedded demo: one inbound call per tenant every
// 5-15 s, so an agent who goes ready is offered a call within 30 s.
const DemoCallInterval = 10 * time.Second

// Defaults for the zero values of Config.
const (
	DefaultIVRTime            = 3 * time.Second
	DefaultRingTimeout        = 15 * time.Second
	DefaultCallerPatience     = 90 * time.Second
	DefaultTalkTimeMin        = 30 * time.Second
	DefaultTalkTimeMax        = 120 * time.Second
	DefaultAutoAnswerAgentLeg = 1 * time.Second
	DefaultCustomerAnswerMin  = 2 * time.Second
	DefaultCustomerAnswerMax  = 4 * time.Second
)

// TelsetPauseReason is the reason of a pause done with ButtonPause on the phone (DND).
const TelsetPauseReason = "dnd"

// Config configures a simulated PBX. Zero durations take the defaults above; negative
// durations are reported by Validate and replaced by the defaults.
type Config struct {
	// HonourWrapUp makes the queues keep a member who finished a queue call out of the
	// rotation for the queue's wrap-up time (QueueConfig.WrapUpSeconds, else the tenant's), as
	// Asterisk's queues.conf `wrapuptime` does, so that no call is offered between the hang-up
	// and the wrap-up pause callbridge sends. Unpausing the member ends it early (the agent
	// went ready before the timer). Off by default: the model tests drive the queues alone.
	HonourWrapUp bool
	// Directory gives the switch its devices and routing: every user with a Device is an agent
	// phone (device ids are switch-wide: the first tenant that names a device owns it), every
	// tenant's queues are ACD queues, and DIDs[i] routes to Queues[i] (or to Queues[0] when the
	// tenant has fewer queues than DIDs). A tenant without queues gets no inbound calls.
	Directory callbridge.Directory
	// Rand is the only source of randomness (caller numbers, IVR answers, intervals). Nil: a
	// fixed seed, so two PBXs with the same Config behave identically.
	Rand *rand.Rand
	// Start is the simulated time the PBX starts at (the first automatic call comes within
	// CallInterval of it). Zero: 2026-01-01T00:00:00Z.
	Start time.Time

	// CallInterval is the mean time between automatic inbound calls per tenant; each gap is
	// drawn uniformly from [CallInterval/2, 3*CallInterval/2]. 0 = no automatic calls; values
	// between 0 and 1 ms count as 1 ms.
	CallInterval time.Duration
	// IVRTime is how long a caller spends in the IVR before the call is queued (default 3 s).
	IVRTime time.Duration
	// RingTimeout is how long a device rings before the switch gives up on it: the queue then
	// offers the call to the next member; a direct target (transfer, consultation, internal
	// make_call) fails with no_answer and the call clears (default 15 s).
	RingTimeout time.Duration
	// CallerPatience is how long a caller waits in a queue before hanging up (abandon)
	// (default 90 s).
	CallerPatience time.Duration
	// TalkTimeMin and TalkTimeMax bound the time (uniform) after which the outside party hangs
	// up once an agent answered, unless somebody hung up first (default 30-120 s).
	TalkTimeMin, TalkTimeMax time.Duration
	// AutoAnswerAgentLeg is how long the agent's phone rings before it auto-answers the agent
	// leg of a make_call (agent-first click-to-call) (default 1 s).
	AutoAnswerAgentLeg time.Duration
	// CustomerAnswerMin and CustomerAnswerMax bound the time (uniform) an outside number rings
	// before it answers (default 2-4 s). Numbers ending in "486" are busy instead.
	CustomerAnswerMin, CustomerAnswerMax time.Duration
	// AgentAnswer, when positive, makes every agent phone answer a call offered to it (queue,
	// transfer, consultation, internal call) after ringing that long: robot agents for demos
	// and load generation. 0 (the default): only answer_call or ButtonAnswer answers.
	AgentAnswer time.Duration
	// MembersLoggedIn starts every agent as a paused ("not ready") member of its queues
	// (UserConfig.Queues, or every queue of its tenant when the user lists none). False (the
	// default): agents start logged out, in no queue.
	MembersLoggedIn bool
}

// withDefaults returns c with zero or negative durations replaced by defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.IVRTime, DefaultIVRTime)
	def(&c.RingTimeout, DefaultRingTimeout)
	def(&c.CallerPatience, DefaultCallerPatience)
	def(&c.TalkTimeMin, DefaultTalkTimeMin)
	def(&c.TalkTimeMax, DefaultTalkTimeMax)
	def(&c.AutoAnswerAgentLeg, DefaultAutoAnswerAgentLeg)
	def(&c.CustomerAnswerMin, DefaultCustomerAnswerMin)
	def(&c.CustomerAnswerMax, DefaultCustomerAnswerMax)
	if c.TalkTimeMax < c.TalkTimeMin {
		c.TalkTimeMax = c.TalkTimeMin
	}
	if c.CustomerAnswerMax < c.CustomerAnswerMin {
		c.CustomerAnswerMax = c.CustomerAnswerMin
	}
	c.CallInterval = clampInterval(c.CallInterval)
	if c.AgentAnswer < 0 {
		c.AgentAnswer = 0
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(1, 2))
	}
	return c
}

// Validate reports what NewPBX will ignore or replace: negative durations, a maximum below
// its minimum, a device claimed by two users, a DID of two tenants, a queue name used twice,
// an unknown queue in a user's Queues. NewPBX works with any Config; Validate is for callers
// that want to refuse a bad one (the result joins one *callbridge.Error with code invalid per problem).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, callbridge.Errorf(callbridge.EInvalid, format, args...))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"CallInterval", c.CallInterval}, {"IVRTime", c.IVRTime}, {"RingTimeout", c.RingTimeout},
		{"CallerPatience", c.CallerPatience}, {"TalkTimeMin", c.TalkTimeMin}, {"TalkTimeMax", c.TalkTimeMax},
		{"AutoAnswerAgentLeg", c.AutoAnswerAgentLeg}, {"CustomerAnswerMin", c.CustomerAnswerMin},
		{"CustomerAnswerMax", c.CustomerAnswerMax}, {"AgentAnswer", c.AgentAnswer},
	} {
		if f.d < 0 {
			bad("sim: %s is negative (%s)", f.name, f.d)
		}
	}
	if c.TalkTimeMax > 0 && c.TalkTimeMax < c.TalkTimeMin {
		bad("sim: TalkTimeMax %s is below TalkTimeMin %s", c.TalkTimeMax, c.TalkTimeMin)
	}
	if c.CustomerAnswerMax > 0 && c.CustomerAnswerMax < c.CustomerAnswerMin {
		bad("sim: CustomerAnswerMax %s is below CustomerAnswerMin %s", c.CustomerAnswerMax, c.CustomerAnswerMin)
	}
	devices := map[callbridge.DeviceID]string{}
	dids := map[string]callbridge.TenantID{}
	queues := map[callbridge.QueueName]callbridge.TenantID{}
	tenants := map[callbridge.TenantID]bool{}
	for _, t := range c.Directory.Tenants {
		if !callbridge.ValidToken(string(t.ID)) {
			bad("sim: tenant id %q is not a valid token", t.ID)
		}
		if tenants[t.ID] {
			bad("sim: tenant %q appears twice", t.ID)
		}
		tenants[t.ID] = true
		own := map[callbridge.QueueName]bool{}
		for _, q := range t.Queues {
			if err := callbridge.CheckDialTarget("queue", string(q.Name)); err != nil {
				bad("sim: tenant %s: %v", t.ID, err)
			}
			if other, ok := queues[q.Name]; ok {
				bad("sim: queue %q belongs to tenants %s and %s", q.Name, other, t.ID)
			}
			queues[q.Name] = t.ID
			own[q.Name] = true
		}
		for _, d := range t.DIDs {
			if err := callbridge.CheckDialTarget("did", d); err != nil {
				bad("sim: tenant %s: %v", t.ID, err)
			}
			if other, ok := dids[d]; ok {
				bad("sim: DID %q belongs to tenants %s and %s", d, other, t.ID)
			}
			dids[d] = t.ID
		}
		for _, u := range t.Users {
			if u.Device == "" {
				continue
			}
			if err := callbridge.CheckDialTarget("device", string(u.Device)); err != nil {
				bad("sim: user %s/%s: %v", t.ID, u.Username, err)
			}
			who := fmt.Sprintf("%s/%s", t.ID, u.Username)
			if other, ok := devices[u.Device]; ok {
				bad("sim: device %s belongs to %s and %s", u.Device, other, who)
			}
			devices[u.Device] = who
			for _, q := range u.Queues {
				if !own[q] {
					bad("sim: user %s lists queue %q, which is not a queue of tenant %s", who, q, t.ID)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// clampInterval returns a usable CallInterval: 0 for none, at least 1 ms otherwise.
func clampInterval(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return max(d, time.Millisecond)
}
