package load

import "encoding/json"

// UnmarshalJSON reads runs.counts written by any release: the snake_case
// keys of Counts' tags, and the Go field names earlier releases wrote
// (encoding/json matches "Create" to "create" by itself, but not
// "MapRejected" to "map_rejected").
func (c *Counts) UnmarshalJSON(b []byte) error {
	type plain struct {
		Create      int64            `json:"create"`
		Update      int64            `json:"update"`
		Deactivate  int64            `json:"deactivate"`
		Unchanged   int64            `json:"unchanged"`
		Resolve     int64            `json:"resolve"`
		MapRejected int64            `json:"map_rejected"`
		OK          int64            `json:"ok"`
		Rejected    int64            `json:"rejected"`
		Failed      int64            `json:"failed"`
		Uncertain   int64            `json:"uncertain"`
		NotSent     int64            `json:"not_sent"`
		NoUpdateAPI int64            `json:"not_sent_no_update_api"`
		Calls       int64            `json:"calls"`
		Attempts    int64            `json:"attempts"`
		ErrorCodes  map[string]int64 `json:"error_codes"`
		// Earlier releases' keys.
		OldMapRejected int64            `json:"MapRejected"`
		OldNotSent     int64            `json:"NotSent"`
		OldErrorCodes  map[string]int64 `json:"ErrorCodes"`
	}
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.MapRejected == 0 {
		p.MapRejected = p.OldMapRejected
	}
	if p.NotSent == 0 {
		p.NotSent = p.OldNotSent
	}
	if p.ErrorCodes == nil {
		p.ErrorCodes = p.OldErrorCodes
	}
	c.Create, c.Update, c.Deactivate, c.Unchanged, c.Resolve = p.Create, p.Update, p.Deactivate, p.Unchanged, p.Resolve
	c.MapRejected, c.OK, c.Rejected, c.Failed, c.Uncertain = p.MapRejected, p.OK, p.Rejected, p.Failed, p.Uncertain
	c.NotSent, c.NoUpdateAPI, c.Calls, c.Attempts, c.ErrorCodes = p.NotSent, p.NoUpdateAPI, p.Calls, p.Attempts, p.ErrorCodes
	return nil
}
