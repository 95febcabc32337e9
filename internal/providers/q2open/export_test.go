package q2open

import "encoding/json"

// WireJSON is the clear encoding the client sends, for tests that build
// request bodies by hand (every exported encoding masks the cards).
func WireJSON(r SyncRequest) ([]byte, error) { return json.Marshal(r.wire()) }
