package e2e

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestPodPidNamespace: a pod asking for a shared pid namespace gets
// hull-pause as its pid 1; its containers see each other's processes, and
// stopping the pod ends the pause process.
func TestPodPidNamespace(t *testing.T) {
	d := startHulld(t, "")
	d.crictl("pull", busybox)
	pidNS := `"linux":{"security_context":{"namespace_options":{"pid":0}}}`
	pod := d.podJSON("pidns", "")
	b, _ := os.ReadFile(pod)
	writeFile(t, pod, strings.Replace(string(b), `"linux":{}`, pidNS, 1))
	p := d.crictl("runp", pod)
	var ctrs []string
	for i, n := range []string{"one", "two"} {
		cj := d.ctrJSON(n, "exec sleep 30"+strconv.Itoa(i+1), "")
		b, _ := os.ReadFile(cj)
		writeFile(t, cj, strings.Replace(string(b), `"linux":{}`, pidNS, 1))
		c := d.crictl("create", p, cj, pod)
		d.crictl("start", c)
		ctrs = append(ctrs, c)
	}
	out := d.crictl("exec", "-s", ctrs[1], "ps", "-o", "pid,args")
	if !strings.Contains(out, "sleep 301") || !strings.Contains(out, "pause") {
		t.Fatalf("container two does not see the pod's processes:\n%s", out)
	}
	info := d.crictl("inspectp", "-o", "json", p)
	i := strings.Index(info, `"pausePid": "`)
	if i < 0 {
		t.Fatalf("no pausePid in inspectp:\n%s", info)
	}
	pid, err := strconv.Atoi(strings.SplitN(info[i+len(`"pausePid": "`):], `"`, 2)[0])
	if err != nil || pid <= 0 {
		t.Fatalf("pausePid: %v", err)
	}
	d.crictl("stopp", p)
	eventually(t, "pause process gone", func() bool {
		if err := syscall.Kill(pid, 0); err != nil {
			return true
		}
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return strings.Contains(string(b), ") Z ")
	})
	for _, c := range ctrs {
		if st := field(d.inspect("inspect", c), "status.state"); st != "CONTAINER_EXITED" {
			t.Fatalf("container %s is %v after stopp", c, st)
		}
	}
}
