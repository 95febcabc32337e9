// Package shard splits customers among N processes by a stable hash of the
// customer id, so shards never overlap and a customer always lands on the
// same shard (its sync_state, intents and deactivation stay with it).
package shard

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shard is shard Index of Count (0-based). The zero value means "all".
type Shard struct{ Index, Count int }

// Parse reads "i/N". An empty i ("/N") takes jobIndex, which Kubernetes
// Indexed Jobs provide as JOB_COMPLETION_INDEX.
func Parse(spec, jobIndex string) (Shard, error) {
	if spec == "" {
		return Shard{0, 1}, nil
	}
	is, ns, ok := strings.Cut(spec, "/")
	if !ok {
		return Shard{}, fmt.Errorf("%q is not i/N", spec)
	}
	if is == "" {
		is = jobIndex
		if is == "" {
			return Shard{}, fmt.Errorf("%q leaves the index empty but JOB_COMPLETION_INDEX is not set", spec)
		}
	}
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("%q: need 0 <= i < N", spec)
	}
	return Shard{i, n}, nil
}

// Of returns the shard of a customer id: FNV-1a 64 of the id, modulo N.
func Of(customerID string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(customerID))
	return int(h.Sum64() % uint64(n))
}

// Keep reports whether this shard owns customerID.
func (s Shard) Keep(customerID string) bool {
	return s.Count <= 1 || Of(customerID, s.Count) == s.Index
}

func (s Shard) String() string {
	if s.Count <= 1 {
		return "0/1"
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Rate is this shard's share of a partner's rate limit (requests per
// second): N shards, each taking 1/N, together stay within the limit
// without coordinating. 0 (no limit) stays 0.
func (s Shard) Rate(perSec float64) float64 {
	if s.Count <= 1 || perSec <= 0 {
		return perSec
	}
	return perSec / float64(s.Count)
}
