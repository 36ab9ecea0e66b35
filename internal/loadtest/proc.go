package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Build builds the load client (cbload) into dir and returns its path. It runs the go
// command of the running toolchain.
func Build(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "cbload")
	goCmd := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		goCmd = filepath.Join(root, "bin", "go")
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, "github.com/callbridge/callbridge/internal/loadtest/cbload")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build cbload: %v: %s", err, b)
	}
	return out, nil
}

// ProcConfig is one load client process: the agents with indexes First … First+Count-1,
// from source address Source.
type ProcConfig struct {
	Bin    string
	Mode   Mode
	URL    string
	Source string
	First  int
	Count  int
	// Stderr receives the process's log (warnings); nil discards it.
	Stderr io.Writer
}

// Proc is a running load client, driven by its commands.
type Proc struct {
	cfg  ProcConfig
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Reader
	mu   sync.Mutex // one command at a time
	done chan struct{}
}

// StartProc starts a load client. Stop it with Quit (or Kill).
func StartProc(cfg ProcConfig) (*Proc, error) {
	cmd := exec.Command(cfg.Bin, "-mode", string(cfg.Mode), "-url", cfg.URL, "-source", cfg.Source,
		"-first", strconv.Itoa(cfg.First), "-count", strconv.Itoa(cfg.Count))
	cmd.Stderr = cfg.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start cbload: %w", err)
	}
	p := &Proc{cfg: cfg, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Do sends c and returns the reply; a reply with Err is an error.
func (p *Proc) Do(c Command) (Reply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var r Reply
	b, _ := json.Marshal(c)
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return r, fmt.Errorf("cbload %s %s: %w", p.cfg.Source, c.Cmd, err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return r, fmt.Errorf("cbload %s %s: %w", p.cfg.Source, c.Cmd, err)
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("cbload %s %s: %w", p.cfg.Source, c.Cmd, err)
	}
	if r.Err != "" {
		return r, fmt.Errorf("cbload %s %s: %s", p.cfg.Source, c.Cmd, r.Err)
	}
	return r, nil
}

// Quit asks the process to close its desktops and exit, and kills it if it has not within
// a minute.
func (p *Proc) Quit() {
	_, _ = p.Do(Command{Cmd: "quit"})
	_ = p.in.Close()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.Kill()
	}
}

// Kill ends the process at once.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Procs are a run's load clients.
type Procs []*Proc

// StartProcs starts the clients of desktops agents, perProc at most each, the k-th from
// source address 127.0.<k+1>.1.
func StartProcs(bin string, mode Mode, url string, desktops, perProc int, stderr io.Writer) (Procs, error) {
	var ps Procs
	for first, k := 0, 0; first < desktops; first, k = first+perProc, k+1 {
		p, err := StartProc(ProcConfig{Bin: bin, Mode: mode, URL: url, Source: fmt.Sprintf("127.0.%d.1", k+1),
			First: first, Count: min(perProc, desktops-first), Stderr: stderr})
		if err != nil {
			ps.Quit()
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// Do sends c to every client at once and returns their replies in order.
func (ps Procs) Do(c Command) ([]Reply, error) {
	out := make([]Reply, len(ps))
	errs := make([]error, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { out[i], errs[i] = p.Do(c) })
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Stats merges every client's stats.
func (ps Procs) Stats() (*Stats, error) {
	rs, err := ps.Do(Command{Cmd: "stats"})
	if err != nil {
		return nil, err
	}
	all := &Stats{}
	for _, r := range rs {
		if r.Stats != nil {
			all.Merge(r.Stats)
		}
	}
	return all, nil
}

// Seqs merges every client's per-agent counts of the events in (from, to].
func (ps Procs) Seqs(from, to uint64) (map[string]SeqCount, error) {
	rs, err := ps.Do(Command{Cmd: "seqs", From: from, To: to})
	if err != nil {
		return nil, err
	}
	all := map[string]SeqCount{}
	for _, r := range rs {
		for k, v := range r.Seqs {
			all[k] = v
		}
	}
	return all, nil
}

// SeqList returns what agent's desktop received in (from, to], from whichever client
// holds it.
func (ps Procs) SeqList(agent string, from, to uint64) ([]uint64, error) {
	rs, err := ps.Do(Command{Cmd: "seqlist", Agent: agent, From: from, To: to})
	var out []uint64
	for _, r := range rs {
		out = append(out, r.List...)
	}
	return out, err
}

// Quit stops every client.
func (ps Procs) Quit() {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(p.Quit)
	}
	wg.Wait()
}
