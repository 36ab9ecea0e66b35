package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callbridge/callbridge/internal/testenv"
)

// openErr opens a Main on data with its own --db file and HTTP on a free port and returns
// Open's error (closing whatever opened), and whether the --db file was created.
func openErr(t *testing.T, data string) (error, bool) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "second.db")
	m := NewMain(io.Discard, io.Discard)
	m.HTTPAddr, m.DataDir, m.DB, m.LogLevel = "127.0.0.1:0", data, db, "error"
	ctx, cancel := context.WithTimeout(context.Background(), testenv.Patience)
	defer cancel()
	err := m.Open(ctx)
	m.Close()
	_, serr := os.Stat(db)
	return err, !errors.Is(serr, os.ErrNotExist)
}

// TestSecondServeOnSameDataRefused: a second serve on a live node's data directory is
// refused, naming the holder's pid, before it opens a store (its own --db file is never
// created); the live node goes on; once it stops, the directory can be used again.
func TestSecondServeOnSameDataRefused(t *testing.T) {
	m1 := runMain(t)
	abs, err := filepath.Abs(m1.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	err, created := openErr(t, m1.DataDir)
	want := fmt.Sprintf("data directory %s is in use by pid %d", abs, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open = %v, want %q", err, want)
	}
	if created {
		t.Error("the second serve created its store before refusing")
	}
	res, err := http.Get("http://" + m1.HTTP.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the live node after the refusal: /readyz %s", res.Status)
	}
	m1.Close()
	if err, _ := openErr(t, m1.DataDir); err != nil {
		t.Fatalf("Open after the first node stopped: %v", err)
	}
}

// startChild runs `callbridge serve ARGS…` as a real process (the test binary, see TestMain)
// and returns it once its banner is out.
func startChild(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"--"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=serve")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), "agent desktop:") {
				seen = true
				close(banner)
			}
		}
	}()
	select {
	case <-banner:
	case <-time.After(90 * time.Second):
		t.Fatal("the child serve printed no banner")
	}
	return cmd
}

// TestDataDirLockAcrossProcesses: with a real serve process on a data directory, another
// serve is refused with that process's pid; after the process is killed (SIGKILL: no clean
// shutdown, the lock file stays), the directory is usable again.
func TestDataDirLockAcrossProcesses(t *testing.T) {
	data := t.TempDir()
	child := startChild(t, "--data", data, "--http", "127.0.0.1:0", "--log-level", "error", "--sim-call-interval", "1h")
	err, created := openErr(t, data)
	want := fmt.Sprintf("data directory %s is in use by pid %d", data, child.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open beside a live serve process = %v, want %q", err, want)
	}
	if created {
		t.Error("the refused serve created its store")
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if _, err := os.Stat(filepath.Join(data, lockFileName)); err != nil {
		t.Fatalf("lock file after kill -9: %v", err)
	}
	if err, _ := openErr(t, data); err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
}
