package cri

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"hull/internal/cri/store"
	"hull/internal/errdefs"
)

// startPause starts the pause program (pauseBinary) as pid 1 of a new pid
// namespace for a pod that shares one pid namespace between its containers.
// It returns the pid, its start time (to tell it from a reused pid after a
// restart) and the namespace path containers join.
func (s *Service) startPause(sb *store.Sandbox) (int, uint64, string, error) {
	bin, err := s.pauseBinary()
	if err != nil {
		return 0, 0, "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return 0, 0, "", fmt.Errorf("pause binary %s: %w", bin, errdefs.ErrFailedPrecondition)
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, 0, "", fmt.Errorf("start %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	st, err := procStartTime(pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return 0, 0, "", err
	}
	// Reaped by stopPause, not by a goroutine per pod blocked in wait (one
	// OS thread each); a pause that died early is a zombie until then,
	// which pauseAlive reports as gone.
	s.mu.Lock()
	s.pauses[sb.ID] = cmd.Process
	s.mu.Unlock()
	return pid, st, fmt.Sprintf("/proc/%d/ns/pid", pid), nil
}

// stopPause stops the pod's pause process if it is still the one we started.
func (s *Service) stopPause(sb *store.Sandbox) {
	if sb.PausePID <= 0 {
		return
	}
	s.mu.Lock()
	proc := s.pauses[sb.ID]
	delete(s.pauses, sb.ID)
	s.mu.Unlock()
	if proc != nil {
		// Our child: kill and reap it.
		_ = proc.Kill()
		_, _ = proc.Wait()
		return
	}
	if st, err := procStartTime(sb.PausePID); err != nil || st != sb.PauseStartTime {
		return
	}
	_ = syscall.Kill(sb.PausePID, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if st, err := procStartTime(sb.PausePID); err != nil || st != sb.PauseStartTime || procZombie(sb.PausePID) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pauseAlive reports whether the pod's pause process still runs.
func pauseAlive(sb *store.Sandbox) bool {
	st, err := procStartTime(sb.PausePID)
	return err == nil && st == sb.PauseStartTime && !procZombie(sb.PausePID)
}

// procStat returns the fields of /proc/pid/stat after the command name.
func procStat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, errdefs.ErrNotFound)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("process %d: bad stat line", pid)
	}
	return strings.Fields(s[i+1:]), nil
}

// procStartTime is field 22 of /proc/pid/stat (clock ticks since boot).
func procStartTime(pid int) (uint64, error) {
	f, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 20 {
		return 0, fmt.Errorf("process %d: short stat line", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func procZombie(pid int) bool {
	f, err := procStat(pid)
	return err == nil && len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}
