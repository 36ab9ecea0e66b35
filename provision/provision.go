// Package provision reads, checks and builds callbridge provisioning documents: the YAML file
// given to `callbridge serve --provision FILE` and the demo tenant of the embedded default.
//
// A document has the shape of callbridge.Provisioning (see the yaml tags in
// ../directory.go and ../site.go, and the commented examples in ../examples/):
//
//	sites:                        # optional; without it, one implicit site "default" (UTC)
//	  - id: msk
//	    name: Moscow
//	    time_zone: Europe/Moscow
//	    switches:
//	      - pbx: ami://cti:secret@10.1.0.5:5038
//	        ari: ari://cti:secret@10.1.0.5:8088/callbridge
//	tenants:
//	  - id: acme
//	    name: ACME Corp
//	    dids: ["18005550100"]
//	    attached_data: [IVR_LANG, IVR_ACCOUNT]
//	    wrap_up_seconds: 10
//	    reason_codes: [break, lunch]
//	    queues:
//	      - name: acme-support
//	        site: msk             # required with several sites
//	    users:
//	      - username: "1001"
//	        password: demo
//	        name: Alice Acme
//	        site: msk             # home site; required for agents with several sites
//	        device: "1001"
//	        interface: PJSIP/1001
//	        queues: [acme-support]
//
// Every error about the document itself is a *callbridge.Error with code callbridge.EInvalid
// whose message names the tenant, user and field at fault.
package provision

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/callbridge/callbridge"
)

// MaxDocumentBytes is the largest provisioning document Load accepts (4 MiB, enough for
// tens of thousands of users).
const MaxDocumentBytes = 4 << 20

// Load reads one YAML provisioning document from r, fills in defaults (see WithDefaults) and
// checks it with Validate.
//
// Unknown fields, a second YAML document in the stream, an empty document, a document with no
// tenants and a document larger than MaxDocumentBytes are refused. Errors: a *callbridge.Error
// with code EInvalid for anything wrong with the document (the message carries the YAML line
// number where yaml.v3 reports one); the read error, wrapped, when r fails.
func Load(r io.Reader) (p callbridge.Provisioning, err error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDocumentBytes+1))
	if err != nil {
		return callbridge.Provisioning{}, fmt.Errorf("read provisioning document: %w", err)
	}
	if len(data) > MaxDocumentBytes {
		return callbridge.Provisioning{}, callbridge.Errorf(callbridge.EInvalid,
			"provisioning document is larger than %d bytes", MaxDocumentBytes)
	}
	if err := decode(data, &p); err != nil {
		return callbridge.Provisioning{}, err
	}
	if len(p.Tenants) == 0 {
		return callbridge.Provisioning{}, callbridge.Errorf(callbridge.EInvalid,
			"provisioning document has no tenants")
	}
	p = WithDefaults(p)
	if err := Validate(p); err != nil {
		return callbridge.Provisioning{}, err
	}
	return p, nil
}

// LoadFile is Load on the file at path. Errors: as Load; an error from os.Open (wrapped, so
// errors.Is(err, fs.ErrNotExist) works) when the file cannot be opened.
func LoadFile(path string) (callbridge.Provisioning, error) {
	f, err := os.Open(path)
	if err != nil {
		return callbridge.Provisioning{}, fmt.Errorf("open provisioning file: %w", err)
	}
	defer f.Close()
	p, err := Load(f)
	if err != nil {
		var e *callbridge.Error
		if errors.As(err, &e) {
			return callbridge.Provisioning{}, callbridge.Errorf(e.Code, "%s: %s", path, e.Message)
		}
		return callbridge.Provisioning{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// decode parses exactly one YAML document from data into p, refusing unknown fields.
func decode(data []byte, p *callbridge.Provisioning) (err error) {
	// yaml.v3 is a large hand-written parser; should it panic on some input, the document is
	// still just bad input, not a reason to take the server down.
	defer func() {
		if r := recover(); r != nil {
			err = callbridge.Errorf(callbridge.EInvalid, "provisioning document is not valid YAML")
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		if errors.Is(err, io.EOF) {
			return callbridge.Errorf(callbridge.EInvalid, "provisioning document is empty")
		}
		return yamlError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return yamlError(err)
	default:
		return callbridge.Errorf(callbridge.EInvalid,
			"provisioning file holds more than one YAML document (line %d)", extra.Line)
	}
}

// yamlError turns a yaml.v3 error ("yaml: unmarshal errors:\n  line 3: field x not found in
// type callbridge.TenantConfig") into a one-line *callbridge.Error.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	lines := strings.Split(msg, "\n")
	parts := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" && l != "unmarshal errors:" {
			parts = append(parts, l)
		}
	}
	return callbridge.Errorf(callbridge.EInvalid, "provisioning document: %s", strings.Join(parts, "; "))
}
