package main

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// kubernetesDir holds the Kubernetes manifests, relative to this package.
const kubernetesDir = "../../deploy/kubernetes"

// Values the tests give the downward API's fields in a pod's arguments.
var podFieldSamples = map[string]string{
	"status.podIP":  "10.244.1.7",
	"metadata.name": "memcluster-0",
}

// manifests are deploy/kubernetes's objects, each decoded strictly into
// its Kubernetes API type.
type manifests struct {
	statefulSet *appsv1.StatefulSet
	headless    *corev1.Service // clusterIP: None
	client      *corev1.Service
	pdb         *policyv1.PodDisruptionBudget
}

// yamlDocSep splits a YAML file into its documents.
var yamlDocSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// loadManifests decodes every document of every .yaml file in dir into
// the API type its apiVersion and kind name, strictly: a field the type
// does not have, misspelt or misplaced, a duplicate field, or a kind this
// test does not know fails the test.
func loadManifests(t *testing.T, dir string) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	var m manifests
	var services []*corev1.Service
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range yamlDocSep.Split(string(data), -1) {
			if strings.TrimSpace(stripYAMLComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s, document %d", filepath.Base(f), i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 StatefulSet":
				if m.statefulSet != nil {
					t.Fatalf("%s: a second StatefulSet", where)
				}
				m.statefulSet = new(appsv1.StatefulSet)
				obj = m.statefulSet
			case "v1 Service":
				s := new(corev1.Service)
				services = append(services, s)
				obj = s
			case "policy/v1 PodDisruptionBudget":
				if m.pdb != nil {
					t.Fatalf("%s: a second PodDisruptionBudget", where)
				}
				m.pdb = new(policyv1.PodDisruptionBudget)
				obj = m.pdb
			default:
				t.Fatalf("%s: unexpected apiVersion %q kind %q", where, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		}
	}
	for _, s := range services {
		switch {
		case s.Spec.ClusterIP == corev1.ClusterIPNone && m.headless == nil:
			m.headless = s
		case s.Spec.ClusterIP != corev1.ClusterIPNone && m.client == nil:
			m.client = s
		default:
			t.Fatalf("Service %s: want one headless Service and one client Service", s.Name)
		}
	}
	if m.statefulSet == nil || m.headless == nil || m.client == nil || m.pdb == nil {
		t.Fatalf("want a StatefulSet, a headless Service, a client Service and a PodDisruptionBudget; have %+v", m)
	}
	return m
}

// stripYAMLComments drops the lines of doc that are only a comment.
func stripYAMLComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// podVar matches a reference to a container's environment variable in
// its arguments, as Kubernetes expands them.
var podVar = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// expandPodArgs returns c's arguments with every $(VAR) replaced as
// Kubernetes would: with the value of c's env VAR, whose downward API
// fields take values from fields. A reference to a variable c does not
// define (which Kubernetes would leave as it is) is an error.
func expandPodArgs(c *corev1.Container, fields map[string]string) ([]string, error) {
	env := make(map[string]string)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			v, ok := fields[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				return nil, fmt.Errorf("env %s: no sample value for field %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = v
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		}
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		var missing []string
		args[i] = podVar.ReplaceAllStringFunc(a, func(ref string) string {
			name := podVar.FindStringSubmatch(ref)[1]
			v, ok := env[name]
			if !ok {
				missing = append(missing, name)
			}
			return v
		})
		if len(missing) > 0 {
			return nil, fmt.Errorf("argument %q names %v, which the container's env does not define", a, missing)
		}
	}
	return args, nil
}

// containerPort returns the port of c named or numbered p, with protocol
// proto.
func containerPort(c *corev1.Container, p intstr.IntOrString, proto corev1.Protocol) (int, bool) {
	for _, cp := range c.Ports {
		if cp.Protocol == "" {
			cp.Protocol = corev1.ProtocolTCP
		}
		if cp.Protocol != proto {
			continue
		}
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return int(cp.ContainerPort), true
		}
	}
	return 0, false
}

// portOf returns the port of a host:port address and whether its host is
// every interface.
func portOf(t *testing.T, what, addr string) (port int, wildcard bool) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%s %q: %v", what, addr, err)
	}
	ip, err := netip.ParseAddr(host)
	return port, host == "" || err == nil && ip.IsUnspecified()
}

// parseDaemonArgs parses args with the daemon's own parser and fails the
// test on an error or on any warning.
func parseDaemonArgs(t *testing.T, what string, args []string) options {
	t.Helper()
	var stderr bytes.Buffer
	opts, err := parseArgs(args, &stderr)
	if err != nil {
		t.Fatalf("%s: the daemon refuses %q: %v", what, args, err)
	}
	if stderr.Len() > 0 {
		t.Errorf("%s: the daemon warns about %q:\n%s", what, args, stderr.String())
	}
	return opts
}

// TestKubernetesManifests decodes deploy/kubernetes strictly into the
// Kubernetes API types and checks that the objects agree with each other
// and with the node's flags, parsed by the daemon's own parser: ports,
// probes, the join name, the advertised address, the grace period against
// the drain, and the resources against -m and -t.
func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t, kubernetesDir)
	sts := m.statefulSet
	spec := &sts.Spec.Template.Spec

	// The objects select the StatefulSet's pods.
	podLabels := sts.Spec.Template.Labels
	if sel, err := metav1.LabelSelectorAsSelector(sts.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("the StatefulSet's selector %v does not select its pods' labels %v (%v)", sts.Spec.Selector, podLabels, err)
	}
	if sel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("the PodDisruptionBudget's selector %v does not select the pods' labels %v (%v)", m.pdb.Spec.Selector, podLabels, err)
	}
	if mu := m.pdb.Spec.MaxUnavailable; mu == nil || mu.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1: one node leaves at a time", mu)
	}
	for _, s := range []*corev1.Service{m.headless, m.client} {
		if len(s.Spec.Selector) == 0 {
			t.Errorf("Service %s selects nothing", s.Name)
		}
		for k, v := range s.Spec.Selector {
			if podLabels[k] != v {
				t.Errorf("Service %s selects %s=%s, which the pods do not have (%v)", s.Name, k, v, podLabels)
			}
		}
	}

	// The headless Service governs the StatefulSet and lists pods that
	// are not ready yet: a node is ready only once it has joined them.
	if sts.Spec.ServiceName != m.headless.Name {
		t.Errorf("StatefulSet serviceName %q, want the headless Service %q", sts.Spec.ServiceName, m.headless.Name)
	}
	if !m.headless.Spec.PublishNotReadyAddresses {
		t.Errorf("headless Service %s: publishNotReadyAddresses must be true, or no pod is ever ready", m.headless.Name)
	}
	if m.client.Spec.PublishNotReadyAddresses {
		t.Errorf("client Service %s lists pods that are not ready", m.client.Name)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("podManagementPolicy %q, want Parallel: pods must not wait for each other's readiness", sts.Spec.PodManagementPolicy)
	}

	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := &spec.Containers[0]
	if len(c.Command) != 0 {
		t.Errorf("container command %q: leave it to the image's ENTRYPOINT", c.Command)
	}
	args, err := expandPodArgs(c, podFieldSamples)
	if err != nil {
		t.Fatal(err)
	}
	opts := parseDaemonArgs(t, "StatefulSet", args)
	cfg := opts.cfg

	// memcached's port: the container's, the Services' target.
	if p, ok := containerPort(c, intstr.FromString("memcache"), corev1.ProtocolTCP); !ok || p != cfg.Port {
		t.Errorf("container port memcache %d (%v), want -p %d", p, ok, cfg.Port)
	}
	for _, s := range []*corev1.Service{m.client, m.headless} {
		found := false
		for _, sp := range s.Spec.Ports {
			if sp.Port != int32(cfg.Port) {
				continue
			}
			found = true
			if p, ok := containerPort(c, sp.TargetPort, corev1.ProtocolTCP); !ok || p != cfg.Port {
				t.Errorf("Service %s port %d targets %v, container port %d (%v), want -p %d", s.Name, sp.Port, sp.TargetPort.String(), p, ok, cfg.Port)
			}
		}
		if !found {
			t.Errorf("Service %s has no port %d", s.Name, cfg.Port)
		}
	}
	if ls := cfg.ListenAddrs; len(ls) != 1 || ls[0] != "0.0.0.0" {
		t.Errorf("listen addresses %q, want the pod's every interface", ls)
	}

	// Gossip: the container's port, TCP and UDP, and the headless
	// Service's, on every interface of the pod.
	gossipPort, wildcard := portOf(t, "--gossip-addr", cfg.Cluster.GossipAddr)
	if !wildcard {
		t.Errorf("--gossip-addr %q: want every interface of the pod", cfg.Cluster.GossipAddr)
	}
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
		if _, ok := containerPort(c, intstr.FromInt32(int32(gossipPort)), proto); !ok {
			t.Errorf("no %s container port %d for gossip", proto, gossipPort)
		}
		found := false
		for _, sp := range m.headless.Spec.Ports {
			if sp.Port == int32(gossipPort) && sp.Protocol == proto {
				found = true
				if p, ok := containerPort(c, sp.TargetPort, proto); !ok || p != gossipPort {
					t.Errorf("headless Service %s %s port %d targets %v, container port %d (%v), want %d", m.headless.Name, proto, sp.Port, sp.TargetPort.String(), p, ok, gossipPort)
				}
			}
		}
		if !found {
			t.Errorf("headless Service %s has no %s port %d for gossip", m.headless.Name, proto, gossipPort)
		}
	}

	// The join: the headless Service's DNS name, at the gossip port.
	if len(cfg.Cluster.Join) != 1 {
		t.Fatalf("--join %q, want one seed: the headless Service", cfg.Cluster.Join)
	}
	joinHost, joinPort, err := net.SplitHostPort(cfg.Cluster.Join[0])
	if err != nil {
		t.Fatal(err)
	}
	if joinHost != m.headless.Name && !strings.HasPrefix(joinHost, m.headless.Name+"."+namespaceOr(m.headless.Namespace)+".svc") {
		t.Errorf("--join host %q is not the headless Service %q's DNS name", joinHost, m.headless.Name)
	}
	if joinPort != strconv.Itoa(gossipPort) {
		t.Errorf("--join port %s, want the gossip port %d", joinPort, gossipPort)
	}

	// The pod's own address and name, from the downward API.
	if want := podFieldSamples["status.podIP"]; cfg.Cluster.AdvertiseAddr != want {
		t.Errorf("--advertise-addr %q, want the pod's IP (status.podIP, %s)", cfg.Cluster.AdvertiseAddr, want)
	}
	if want := podFieldSamples["metadata.name"]; cfg.Cluster.Name != want {
		t.Errorf("--name %q, want the pod's name (metadata.name, %s)", cfg.Cluster.Name, want)
	}
	if !cfg.Cluster.Forward {
		t.Errorf("no --forward: a client of Service %s reaching any pod would miss the keys others own", m.client.Name)
	}

	// The probes: /readyz and /livez on --metrics-addr's port.
	metricsPort, wildcard := portOf(t, "--metrics-addr", cfg.MetricsAddr)
	if !wildcard {
		t.Errorf("--metrics-addr %q: the kubelet probes the pod's IP; want every interface", cfg.MetricsAddr)
	}
	for _, probe := range []struct {
		name, path string
		p          *corev1.Probe
	}{{"readiness", "/readyz", c.ReadinessProbe}, {"liveness", "/livez", c.LivenessProbe}} {
		if probe.p == nil || probe.p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", probe.name)
			continue
		}
		g := probe.p.HTTPGet
		if g.Path != probe.path {
			t.Errorf("%s probe path %q, want %q", probe.name, g.Path, probe.path)
		}
		if p, ok := containerPort(c, g.Port, corev1.ProtocolTCP); !ok || p != metricsPort {
			t.Errorf("%s probe port %v is container port %d (%v), want --metrics-addr's %d", probe.name, g.Port.String(), p, ok, metricsPort)
		}
	}

	// Termination: the preStop sleep, then SIGTERM's leave, drain and
	// shutdown, all within the grace period.
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Fatal("no preStop sleep")
	}
	if opts.drain <= 0 {
		t.Errorf("--drain %v: a node stopped in a rolling update would leave its clients no time to move", opts.drain)
	}
	if cfg.Cluster.HandoffPush <= 0 {
		t.Errorf("--handoff-push %d: a node leaving would take its keys with it", cfg.Cluster.HandoffPush)
	}
	preStop := c.Lifecycle.PreStop.Sleep.Seconds
	need := float64(preStop) + (cfg.Cluster.LeaveTimeout + opts.drain + shutdownTimeout).Seconds()
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if g := sts.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = *g
	}
	if float64(grace) < need {
		t.Errorf("terminationGracePeriodSeconds %d, want at least %.0f: preStop %ds + --leave-timeout %v + --drain %v + shutdown %v",
			grace, need, preStop, cfg.Cluster.LeaveTimeout, opts.drain, shutdownTimeout)
	}

	// Resources: memory for -m and what the process holds beside it,
	// CPUs for -t.
	memLimit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("no memory limit")
	}
	if want := int64(math.Ceil(1.1*float64(cfg.MemoryLimit))) + 64<<20; memLimit.Value() < want {
		t.Errorf("memory limit %s below 1.1 x -m (%d MiB) + 64 MiB", memLimit.String(), cfg.MemoryLimit>>20)
	}
	if req, ok := c.Resources.Requests[corev1.ResourceMemory]; !ok || req.Cmp(memLimit) != 0 {
		t.Errorf("memory request %s, want the limit %s: a cache's memory is used, not burst into", req.String(), memLimit.String())
	}
	if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; !ok || int64(cfg.Threads) > cpu.Value() {
		t.Errorf("-t %d threads with a CPU limit of %s", cfg.Threads, cpu.String())
	}

	// A non-root user, the image's.
	uid, _ := imageUser(t, "../../Dockerfile")
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != uid {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and runAsUser %d, the image's", psc, uid)
	}
	if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("container securityContext %+v: want no privilege escalation, a read-only root and every capability dropped", sc)
	}
}

// TestKubernetesManifestsAreStrict checks that the decoding of
// TestKubernetesManifests refuses what a typo makes: a misspelt field, a
// field in the wrong place, a duplicate.
func TestKubernetesManifestsAreStrict(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(kubernetesDir, "statefulset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, edit := range []struct{ from, to string }{
		{"podManagementPolicy:", "podManagmentPolicy:"},
		{"  readinessProbe:", "  readynessProbe:"},
		{"replicas: 3", "replicas: 3"}, // no change: the file as it is decodes
		{"terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 30\n      terminationGracePeriodSeconds: 31"},
		{"      containers:", "      ports: []\n      containers:"},
	} {
		doc := strings.Replace(string(data), edit.from, edit.to, 1)
		var sts appsv1.StatefulSet
		err := yaml.UnmarshalStrict([]byte(doc), &sts)
		if unchanged := doc == string(data); unchanged != (err == nil) {
			t.Errorf("%q → %q: unchanged %v, decoding error %v", edit.from, edit.to, unchanged, err)
		}
	}
}

// namespaceOr returns ns, or "default" if it is empty.
func namespaceOr(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}
