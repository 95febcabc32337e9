// Package migrations embeds the ledger schema so the binary carries it.
// Files are applied in name order, each once, each in its own transaction.
package migrations

import "embed"

//go:embed *.sql
var FS embed.FS
