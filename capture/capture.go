// Package capture reads and writes callbridge's JSONL capture format — the format of the
// recordings in shared/fixtures (see shared/fixtures/asterisk-22/README.md, "Files and JSONL
// format") — and plays recordings back over TCP as the switch would (replay server).
package capture

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Directions of a Record.
const (
	DirIn  = "in"  // a frame the recording client received from the switch
	DirOut = "out" // a frame the recording client sent
	DirEOF = "eof" // the TCP connection closed
	// DirREST is an ARI REST request with its response (ari-stasis-call.ari.jsonl).
	DirREST = "rest"
)

// Record is one line of a capture: {"t_ms":1033,"dir":"in","raw":"..."}. TMs is milliseconds
// since the scenario started. Raw holds the exact bytes of one protocol frame (CRLF kept).
// ARI REST lines and .sim.jsonl notes use the other fields.
type Record struct {
	TMs    int64  `json:"t_ms"`
	Dir    string `json:"dir,omitempty"`
	Raw    string `json:"raw"`
	Sim    string `json:"sim,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Read parses a JSONL capture. Blank lines are skipped; a malformed line, or one with a dir
// other than in, out, eof, rest or none (a simulator note), is an error naming its line
// number.
func Read(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("capture line %d: %w", line, err)
		}
		switch rec.Dir {
		case DirIn, DirOut, DirEOF, DirREST, "": // "" is a .sim.jsonl note
		default:
			return nil, fmt.Errorf("capture line %d: unknown dir %q (want in, out, eof or rest)", line, rec.Dir)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("capture line %d: %w", line+1, err)
	}
	return out, nil
}

// ReadFile reads a JSONL capture file.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return recs, nil
}
