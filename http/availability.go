package http

import (
	nethttp "net/http"

	"github.com/callbridge/callbridge"
)

// handleAvailability serves GET /v1/agents/{id}/availability: whether agent {id} of the
// caller's tenant is routable and, if not, every reason with the event that caused it
// (callbridge.Availability). An agent may read only their own; supervisors and admins any
// agent of their tenant. Errors: 401 without a token, 403 for another agent's, 400 for a
// malformed id, 404 for an agent the engine does not know, 501 when the Commander cannot
// explain availability.
func (s *Server) handleAvailability(w nethttp.ResponseWriter, r *nethttp.Request, id identity) {
	agent := r.PathValue("id")
	if !callbridge.ValidToken(agent) {
		s.writeError(w, r, callbridge.Errorf(callbridge.EInvalid, "agent id must be 1-64 characters of [A-Za-z0-9_-]"))
		return
	}
	if id.Role == callbridge.RoleAgent && agent != id.Username {
		s.writeError(w, r, callbridge.Errorf(callbridge.EForbidden, "an agent can only read their own availability"))
		return
	}
	svc, ok := s.cfg.Commander.(callbridge.AvailabilityService)
	if !ok {
		s.writeError(w, r, callbridge.Errorf(callbridge.ENotSupported, "availability is not available on this node"))
		return
	}
	av, err := svc.Availability(r.Context(), id.Tenant, callbridge.AgentID(agent))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if av.Reasons == nil {
		av.Reasons = []callbridge.AvailabilityReason{}
	}
	writeJSON(w, nethttp.StatusOK, av)
}
