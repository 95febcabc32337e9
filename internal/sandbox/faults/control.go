package faults

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/northwind-data/etl/internal/sandbox"
)

// controlView is what the control endpoint answers.
type controlView struct {
	Config Config `json:"config"`
	Stats  Stats  `json:"stats"`
}

// ControlHandler serves the injector's control endpoint, meant for
// FaultsPath. GET answers {"config":...,"stats":...}. PUT or POST replaces
// the config with the body, either a JSON Config or a spec string as
// ParseSpec reads it, and answers like GET; an invalid body is a 400 and
// changes nothing.
func (i *Injector) ControlHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodPut, http.MethodPost:
			cfg, err := readConfig(r)
			if err != nil {
				sandbox.WriteJSON(w, http.StatusBadRequest, errBody{"bad_config", err.Error(), http.StatusBadRequest})
				return
			}
			i.Set(cfg)
		default:
			w.Header().Set("Allow", "GET, HEAD, PUT, POST")
			sandbox.WriteJSON(w, http.StatusMethodNotAllowed, errBody{"method_not_allowed", "use GET, PUT or POST", http.StatusMethodNotAllowed})
			return
		}
		sandbox.WriteJSON(w, http.StatusOK, controlView{i.Config(), i.Stats()})
	})
}

func readConfig(r *http.Request) (Config, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 64<<10))
	if err != nil {
		return Config{}, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return ParseSpec(string(b))
	}
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, err
	}
	if dec.More() {
		return Config{}, errTrailing
	}
	return cfg, cfg.Validate()
}

type ctlErr string

func (e ctlErr) Error() string { return string(e) }

const errTrailing = ctlErr("faults: trailing data after JSON config")
