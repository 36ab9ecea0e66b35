// Package sim is the simulated PBX: the embedded default switch of `callbridge serve`, the
// switch of demos, of randomized model tests and of load generation. It behaves like a small
// real switch with ACD queues (Asterisk app_queue with strategy "longest idle", ringinuse no)
// and tells its story through the same normalised callbridge.SwitchEvents as a real driver.
//
// The package has two layers:
//
//   - PBX is the pure, deterministic core: no goroutines, no clock, no I/O. Time is passed in
//     (Advance, Execute, PressButton take now), randomness comes from one seeded
//     math/rand/v2 source, and NextDeadline says when the next timer is due. Two PBXs built
//     from equal Configs and driven by equal calls produce equal events.
//   - Driver wraps a PBX in a callbridge.Driver with real time: it sleeps until the next
//     deadline, serialises commands with a mutex and emits every event from one goroutine.
//
// # What the simulated switch does
//
// Inbound calls arrive per tenant every CallInterval on average (uniform in [½, 1½]·CallInterval),
// from a random +1555xxxxxxx number with a name, to the tenant's first DID. The caller spends
// IVRTime in the IVR, which attaches IVR_LANG (en|es|fr), IVR_ACCOUNT (5 digits) and
// IVR_REASON (billing|sales|support), and joins the queue of the DID:
//
//	call_started(inbound, Device = ANI, External) → data_updated(IVR_*) → queued(Queue)
//
// A queued call is offered to the idle, unpaused member of its queue that has been idle
// longest (ties: directory order), one member at a time:
//
//	alerting(Device, Queue) → [answer_call] dequeued → connected(Device)
//	alerting(Device, Queue) → [RingTimeout] failed(Device, no_answer) → alerting(next member)
//	queued → [CallerPatience] dequeued(call_abandoned) → call_cleared(call_abandoned)
//
// Once an agent answered, the outside party hangs up after a talk time drawn from
// [TalkTimeMin, TalkTimeMax] unless an agent hung up first:
//
//	connection_cleared(ANI, normal_clearing) → call_cleared(normal_clearing)
//
// A device is in at most one call at a time (ringinuse no), except that an agent consulting
// has the held original call and the consultation. An agent's phone auto-answers the agent
// leg of a make_call after AutoAnswerAgentLeg, then the customer is dialled; outside numbers
// answer after CustomerAnswerMin-Max, and numbers ending in 486 are busy:
//
//	call_started(outbound, Device = agent, CorrelationID) → alerting(agent) → connected(agent)
//	→ alerting(number, External) → connected(number)          (or failed(busy) → call_cleared(busy))
//
// Commands (Execute) and telset buttons (PressButton) change the same model; see Execute for
// each command's events and refusals. PBXCallIDs are "sim-000001", "sim-000002", …; a leg is
// the PBXCallID and the device, "sim-000001-1001" (with "-2", "-3" … when the same device
// joins the same call again).
package sim
