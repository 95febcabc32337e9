// Package k8s holds the deployment manifests; this test parses them with
// the Kubernetes API types, strictly, so a typo in a field name fails CI
// instead of being silently ignored by the cluster.
package k8s

import (
	"bytes"
	"os"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/partners"
)

func docs(t *testing.T, file string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func TestCronJobIsAValidIndexedJob(t *testing.T) {
	var cj batchv1.CronJob
	if err := yaml.UnmarshalStrict(docs(t, "cronjob.yaml")[0], &cj); err != nil {
		t.Fatalf("cronjob.yaml: %v", err)
	}
	js := cj.Spec.JobTemplate.Spec
	if cj.Kind != "CronJob" || cj.APIVersion != "batch/v1" {
		t.Fatalf("kind %s/%s", cj.APIVersion, cj.Kind)
	}
	if js.CompletionMode == nil || *js.CompletionMode != batchv1.IndexedCompletion {
		t.Fatal("the job must be Indexed so JOB_COMPLETION_INDEX gives the shard")
	}
	if js.Completions == nil || js.Parallelism == nil || *js.Completions != *js.Parallelism {
		t.Fatal("completions and parallelism must both be the shard count")
	}
	n := *js.Completions
	c := js.Template.Spec.Containers[0]
	shard := ""
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--shard="); ok {
			shard = v
		}
	}
	if want := "/" + itoa(int(n)); shard != want {
		t.Fatalf("--shard=%s, want %s (index from JOB_COMPLETION_INDEX, count = completions)", shard, want)
	}
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent || js.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Fatal("want concurrencyPolicy Forbid and restartPolicy Never")
	}
	secrets := 0
	for _, e := range c.Env {
		if e.Value != "" && (strings.Contains(e.Name, "KEY") || strings.Contains(e.Name, "URL")) {
			t.Errorf("env %s carries a literal value; secrets must come from a Secret", e.Name)
		}
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secrets++
		}
	}
	if secrets < 2 {
		t.Fatal("DATABASE_URL and ETL_HMAC_KEY must come from a Secret")
	}
	// The image (make image, Dockerfile) runs as 65532. Secret files are
	// root's; only fsGroup makes them the pod's group, and only a
	// group-readable mode lets that group read them.
	sc := js.Template.Spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Fatal("the pod must run as the image's user 65532, non-root")
	}
	if sc.FSGroup == nil || *sc.FSGroup != 65532 {
		t.Fatal("securityContext.fsGroup must be 65532, or the mounted Secret files are unreadable to the pod's user")
	}
	for _, v := range js.Template.Spec.Volumes {
		if v.Secret == nil {
			continue
		}
		if m := v.Secret.DefaultMode; m == nil || *m&0o040 == 0 || *m&0o007 != 0 {
			t.Errorf("secret volume %s: defaultMode %o: want group-readable and nothing for others (e.g. 0440)", v.Name, derefMode(m))
		}
	}
	if !strings.HasSuffix(strings.Split(c.Image, ":")[0], "/etl") && strings.Split(c.Image, ":")[0] != "etl" {
		t.Errorf("image %q is not the etl image make image builds", c.Image)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem ||
		c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Error("the container must have a read-only root filesystem and no privilege escalation")
	}
	var cfgMounted bool
	for _, v := range js.Template.Spec.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == "etl-config" {
			cfgMounted = true
		}
	}
	if !cfgMounted {
		t.Fatal("the config must come from the etl-config ConfigMap")
	}
}

func TestConfigMapHoldsAConfigEtlAccepts(t *testing.T) {
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(docs(t, "configmap.yaml")[0], &cm); err != nil {
		t.Fatalf("configmap.yaml: %v", err)
	}
	dir := t.TempDir()
	path := dir + "/etl.yaml"
	if err := os.WriteFile(path, []byte(cm.Data["etl.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the ConfigMap's etl.yaml does not parse: %v", err)
	}
	// Only the environment-specific parts (the mounted input, secrets)
	// may be missing here.
	for _, e := range cfg.Validate(partners.Schemas()) {
		if !strings.Contains(e.Msg, "not set") && !strings.Contains(e.Msg, "cannot read secret file") && e.Path != "source.dir" {
			t.Errorf("config problem: %v", e)
		}
	}
}

func TestSecretExampleParses(t *testing.T) {
	for i, d := range docs(t, "secret.example.yaml") {
		var s corev1.Secret
		if err := yaml.UnmarshalStrict(d, &s); err != nil || s.Kind != "Secret" {
			t.Fatalf("document %d: %v", i, err)
		}
	}
}

func derefMode(m *int32) int32 {
	if m == nil {
		return 0
	}
	return *m
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// The data feed takes calls only over mutual TLS: its client certificate
// and key come from a Secret mounted where the config looks for them, and
// readable by the pod's non-root user.
func TestDatafeedClientCertificateComesFromASecret(t *testing.T) {
	var cj batchv1.CronJob
	if err := yaml.UnmarshalStrict(docs(t, "cronjob.yaml")[0], &cj); err != nil {
		t.Fatal(err)
	}
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	vol := ""
	for _, v := range pod.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "etl-datafeed-tls" {
			vol = v.Name
		}
	}
	mount := ""
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.Name == vol && vol != "" {
			if !m.ReadOnly {
				t.Error("the certificate volume must be read-only")
			}
			mount = m.MountPath
		}
	}
	if mount == "" {
		t.Fatal("no volume from the etl-datafeed-tls Secret is mounted")
	}
	if sc := pod.SecurityContext; sc == nil || sc.FSGroup == nil || sc.RunAsUser == nil || *sc.FSGroup != *sc.RunAsUser {
		t.Error("without fsGroup the non-root user cannot read the mounted key")
	}

	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(docs(t, "configmap.yaml")[0], &cm); err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/etl.yaml"
	if err := os.WriteFile(path, []byte(cm.Data["etl.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	opts := cfg.Partners["datafeed"].Options
	for _, k := range []string{"client_cert_file", "client_key_file"} {
		if !strings.HasPrefix(opts[k], mount+"/") {
			t.Errorf("options.%s = %q, want a file under %s", k, opts[k], mount)
		}
	}

	found := false
	for _, d := range docs(t, "secret.example.yaml") {
		var s corev1.Secret
		if err := yaml.UnmarshalStrict(d, &s); err != nil {
			t.Fatal(err)
		}
		if s.Name != "etl-datafeed-tls" {
			continue
		}
		found = true
		if s.Type != corev1.SecretTypeTLS || s.StringData["tls.crt"] == "" || s.StringData["tls.key"] == "" {
			t.Errorf("etl-datafeed-tls: type %s keys %v; want a kubernetes.io/tls Secret with tls.crt and tls.key", s.Type, s.StringData)
		}
		for _, k := range []string{"client_cert_file", "client_key_file"} {
			if _, ok := s.StringData[strings.TrimPrefix(opts[k], mount+"/")]; !ok {
				t.Errorf("options.%s names %s, which the Secret does not hold", k, opts[k])
			}
		}
	}
	if !found {
		t.Error("secret.example.yaml has no etl-datafeed-tls Secret")
	}
}
