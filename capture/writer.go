package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// Writer writes a capture: one JSON line per frame, {"t_ms":…,"dir":…,"raw":…}, in the format
// Read reads and the fixtures use (keys in that order, '<', '>' and '&' not escaped). t_ms is
// whole milliseconds since start. It is safe for concurrent use; lines are written whole and
// in the order of the Write calls.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	buf   bytes.Buffer
	enc   *json.Encoder
	err   error
}

// NewWriter returns a Writer to w whose t_ms counts from start (usually time.Now() when the
// session starts; every file of one scenario should share it).
func NewWriter(w io.Writer, start time.Time) *Writer {
	cw := &Writer{w: w, start: start}
	cw.enc = json.NewEncoder(&cw.buf)
	cw.enc.SetEscapeHTML(false)
	return cw
}

// Write appends one record: dir is DirIn, DirOut or DirEOF (raw "" for DirEOF), raw the exact
// bytes of one frame. It returns an error for another dir or when the underlying write
// fails; after a write error every later Write returns that error.
func (w *Writer) Write(dir, raw string) error {
	switch dir {
	case DirIn, DirOut, DirEOF:
	default:
		return fmt.Errorf("capture: unknown direction %q (want %q, %q or %q)", dir, DirIn, DirOut, DirEOF)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	rec := Record{TMs: time.Since(w.start).Milliseconds(), Dir: dir, Raw: raw}
	w.buf.Reset()
	if err := w.enc.Encode(rec); err != nil { // adds the newline
		return fmt.Errorf("capture: encode: %w", err)
	}
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		w.err = fmt.Errorf("capture: write: %w", err)
		return w.err
	}
	return nil
}

// Tap is Write without a result, to plug into a protocol client's tap hook (ami.Config.Tap).
// Check Err afterwards.
func (w *Writer) Tap(dir, raw string) { _ = w.Write(dir, raw) }

// Err returns the first write error, or nil.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
