package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gofrs/flock"
)

// lockFileName is the lock file in the data directory. It is never removed: removing it
// would let a process that opened the old file and one that creates a new one both "hold"
// the lock.
const lockFileName = "callbridge.lock"

// pidWait bounds how long a refused start waits for the holder to write its pid (the holder
// writes it right after taking the lock, so this is only ever the gap between the two).
const pidWait = 2 * time.Second

// dataLock is serve's exclusive hold on its data directory.
type dataLock struct {
	fl   *flock.Flock
	path string
}

// lockDataDir takes an exclusive advisory lock (flock(2), github.com/gofrs/flock) on
// DIR/callbridge.lock, creating DIR when missing, and writes the process id into the file.
// Two nodes on one data directory would run two embedded NATS servers on one JetStream store
// and two SQLite writers; serve calls this before it opens any of them. The kernel releases
// the lock when the process ends, however it ends, so a lock file left by a killed node
// never blocks the next start. Errors: "data directory DIR is in use by pid N" when another
// process holds it (DIR absolute); a failure to create the directory or the file.
func lockDataDir(dir string) (*dataLock, error) {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	path := filepath.Join(dir, lockFileName)
	fl := flock.New(path, flock.SetPermissions(0o640))
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s: %w", dir, err)
	}
	if !ok {
		if pid := holderPID(path); pid > 0 {
			return nil, fmt.Errorf("data directory %s is in use by pid %d: stop that callbridge or pass another --data", dir, pid)
		}
		return nil, fmt.Errorf("data directory %s is in use by another process (%s is locked): stop it or pass another --data", dir, path)
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o640); err != nil {
		fl.Unlock()
		return nil, fmt.Errorf("lock data directory %s: write pid: %w", dir, err)
	}
	return &dataLock{fl: fl, path: path}, nil
}

// holderPID reads the pid the lock's holder wrote, waiting up to pidWait for it to appear;
// 0 when there is none.
func holderPID(path string) int {
	deadline := time.Now().Add(pidWait)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// release empties the pid and releases the lock (the file stays; see lockFileName).
func (l *dataLock) release() {
	_ = os.Truncate(l.path, 0)
	_ = l.fl.Unlock()
}
