// Package nats is callbridge's bus and event log on NATS (DESIGN.md §3): an embedded
// nats-server with JetStream for the single-binary default, a client for an external
// cluster, and EventLog, the callbridge.EventLog on a JetStream stream.
//
// # Embedded server
//
// StartServer runs nats-server in this process with JetStream on a file store under
// ServerConfig.DataDir, by default with no TCP listener at all; Server.Connect gives
// in-process connections. Its log lines go to the slog.Logger handed in. Production points
// Connect at a cluster instead; everything else is the same.
//
// # Event log
//
// OpenEventLog keeps one stream (default "CB", subjects "cb.>", file storage, events kept
// for MaxAge, default 7 days). Append publishes a domain event once on its call's subject
// and once more on each audience agent's subject, so that an agent's subscription is one
// subject filter and sees their own events only:
//
//	cb.<tenant>.call.<call_id>          call event (tenant-wide subscribers read these)
//	cb.<tenant>.agent.<agent>.call      copy of a call event for an agent in its Audience
//	cb.<tenant>.agent.<agent>.state     agent event
//	cb.$log.opened                      one marker in a new stream (no subscriber sees it)
//
// Every event's Seq is its JetStream stream sequence: one number line for the whole log,
// increasing for every subscriber, with holes where a filter skips other events. A desktop
// resumes with the last Seq it saw (SubscribeWith documents afterSeq 0 and gaps).
//
// # Shutdown order
//
// Stop subscriptions or EventLog.Close, then close the connections, then Server.Shutdown
// (which closes the in-process connections it made anyway).
package nats
