package load

import "encoding/json"

// UnmarshalJSON reads runs.counts written by any release: the snake_case
// keys of Counts' tags, and the Go field names earlier releases wrote
// (encoding/json matches "Create" to "create" by itself, but not
// "MapRejected" to "map_rejected").
func (c *Counts) UnmarshalJSON(b []byte) error {
	// plain has Counts' fields and tags but not this method, so decoding
	// into it does not recurse.
	type plain Counts
	p := struct {
		*plain
		// Earlier releases' keys.
		OldMapRejected int64            `json:"MapRejected"`
		OldNotSent     int64            `json:"NotSent"`
		OldErrorCodes  map[string]int64 `json:"ErrorCodes"`
	}{plain: (*plain)(c)}
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if c.MapRejected == 0 {
		c.MapRejected = p.OldMapRejected
	}
	if c.NotSent == 0 {
		c.NotSent = p.OldNotSent
	}
	if c.ErrorCodes == nil {
		c.ErrorCodes = p.OldErrorCodes
	}
	return nil
}
