package partners_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/northwind-data/etl/internal/config"
	"github.com/northwind-data/etl/internal/partners"
)

func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "etl.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRetryAfterMaxReachesTheClient(t *testing.T) {
	tests := []struct {
		yaml string
		want time.Duration
	}{
		{"partners:\n  synctera:\n    retry_after_max: 90s\n", 90 * time.Second},
		{"partners:\n  synctera: {}\n", 0}, // httpx's default applies
	}
	for _, tc := range tests {
		cfg := loadConfig(t, tc.yaml)
		if got := partners.HTTPConfig(cfg.Partners["synctera"]).RetryAfterMax; got != tc.want {
			t.Errorf("%q: RetryAfterMax %v, want %v", tc.yaml, got, tc.want)
		}
	}
}
