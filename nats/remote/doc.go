// Package remote carries a site's commands, snapshots, availability and desktop presence over
// NATS request/reply (DESIGN.md §3, "Commands from a desktop on any node reach the owning
// site's engine by NATS request/reply"): a Service that a site node runs next to its engine,
// and a Client that implements the same interfaces as the local node (callbridge.Commander,
// callbridge.Presence, callbridge.AvailabilityService and the gateway's DesktopHeartbeats),
// routing each call to the site that owns the tenant and agent.
//
// # Subjects
//
// One NATS micro service (github.com/nats-io/nats.go/micro) per site, named ServiceName, with
// metadata site=<site>, and five endpoints in queue group "q":
//
//	<prefix>.<site>.do            callbridge.Command            → callbridge.CommandResult
//	<prefix>.<site>.snapshot      {"tenant","agent"}            → callbridge.AgentSnapshot
//	<prefix>.<site>.availability  {"tenant","agent"}            → callbridge.Availability
//	<prefix>.<site>.presence      {"op","tenant","agent","desktop"} or
//	                              {"op":"heartbeats","agents":[{"tenant","agent"}…],"desktop"} → {}
//	<prefix>.<site>.ready         (empty)                       → {} (the node's Ready)
//
// prefix is DefaultPrefix ("cbsvc") unless configured; it must stay outside the event log's
// "cb.>" (a request on a subject the stream holds would be stored and answered with a
// JetStream ack). Bodies are JSON of the callbridge types, decoded strictly (unknown fields,
// trailing data and bodies over MaxRequestBytes are invalid). A request may carry the header
// TimeoutHeader (milliseconds): the service gives up waiting for the engine after that long
// (at most MaxTimeout; DefaultTimeout without it). Command.Time is not sent: the site's node
// stamps the command with its own clock.
//
// # Errors
//
// A failed request is answered with an empty body and the micro error headers:
// Nats-Service-Error-Code is the callbridge error code (error.go) and Nats-Service-Error its
// message, so the Client returns the same *callbridge.Error the local node would. Anything
// that is not a *callbridge.Error travels as "internal" / "internal error" (the details are
// logged at the site, never sent). The Client adds EUnavailable of its own: "site <x> is
// unreachable" when no service of the site is subscribed where the request arrives (NATS
// no-responders, at once: the service is stopped, or the site's leaf link is down), and
// "site <x> did not answer in time" when its deadline passes (a link that died without
// closing, a site too slow).
//
// # Idempotency and retries
//
// The Client retries a request only when running it twice is harmless, and only after an
// attempt got no reply at all (never after an answer, never after no-responders): reads
// (snapshot, availability, ready) and commands that carry an IdempotencyKey. Each attempt
// waits at most ClientConfig.AttemptTimeout, all attempts together at most
// ClientConfig.Timeout. A retried command cannot run twice: while the first is still in
// progress at the site the Service joins the retry to it (both get its result), and once it
// is committed the engine answers the retry with the first result (engine.Plan, Duplicate;
// keys are remembered per tenant and agent for engine.IdempotencyWindow). A command without
// a key and presence reports are sent once.
//
// # Trust
//
// The service trusts what it receives: a Command's tenant, agent and role come from the
// gateway that authenticated the caller. Whatever may publish on <prefix>.> can command any
// agent of the site, so NATS accounts and permissions must give those subjects only to
// callbridge nodes, as for the event log.
package remote
